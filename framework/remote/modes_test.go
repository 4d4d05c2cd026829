package remote_test

import (
	"runtime"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

// testHandoff, when set, forces the hand-off mode of every plugin config()
// makes: TestHandoffModes runs tests again in the modes of other platforms
// this one can run (on Linux: macOS's framed stream channel and Windows's
// connect-back relaying).
var testHandoff string

// passesFDs reports whether the plugins of the running test hand kernel
// sockets off by fd.
func passesFDs() bool { return remote.HandoffPassesFDs(testHandoff) }

type modeTest struct {
	name string
	f    func(*testing.T)
}

// modeTests run in every hand-off mode; fdModeTests only where fds pass.
var (
	modeTests = []modeTest{
		{"TestTransportListenDialRoundTripWithHalfClose", TestTransportListenDialRoundTripWithHalfClose},
		{"TestTransport64MiBIntactBothWays", TestTransport64MiBIntactBothWays},
		{"TestTransportDialClosedPortFailsFastAndCancels", TestTransportDialClosedPortFailsFastAndCancels},
		{"TestKill9MidTransferOfRelayedConnectionIsAnError", TestKill9MidTransferOfRelayedConnectionIsAnError},
		{"TestRemoteListenerListensAgainAfterRestart", TestRemoteListenerListensAgainAfterRestart},
		{"TestCloseUnblocksAcceptOfRemoteListener", TestCloseUnblocksAcceptOfRemoteListener},
		{"TestRestartsAreBoundedThenGivesUp", TestRestartsAreBoundedThenGivesUp},
		{"TestConformanceTransportOutOfProcess", TestConformanceTransportOutOfProcess},
		{"TestRemoteValidator", TestRemoteValidator},
		{"TestRemoteDiscoveryJoinLeaveRejoinClose", TestRemoteDiscoveryJoinLeaveRejoinClose},
		{"TestRemoteUTPOnSharedSocket", TestRemoteUTPOnSharedSocket},
		{"TestSwarmOverRemoteDHT", TestSwarmOverRemoteDHT},
		{"TestGarbageRepliesAreErrorsNotPanics", TestGarbageRepliesAreErrorsNotPanics},
	}
	fdModeTests []modeTest
)

// otherModes are the hand-off modes this platform can run besides its own.
func otherModes() []string {
	var all []string
	switch runtime.GOOS {
	case "linux":
		all = []string{"seqpacket", "stream", "connect"}
	case "windows":
		all = []string{"connect"}
	default:
		all = []string{"stream", "connect"}
	}
	var out []string
	for _, m := range all {
		if m != remote.DefaultHandoff() {
			out = append(out, m)
		}
	}
	return out
}

// The other platforms' hand-off paths, run here: on Linux, macOS's framed
// SOCK_STREAM fd channel and shared-socket relay, and Windows's relaying
// without fd passing (every connection relayed over a loopback connection
// the plugin makes to the host, every listener kept in the plugin).
func TestHandoffModes(t *testing.T) {
	for _, mode := range otherModes() {
		t.Run(mode, func(t *testing.T) {
			testHandoff = mode
			defer func() { testHandoff = "" }()
			tr := startTransport(t, config(t, "tcp"))
			if got := remote.HandoffOf(tr); got != mode {
				t.Fatalf("plugin runs in hand-off mode %q, want %q", got, mode)
			}
			tr.Close()
			tests := modeTests
			if remote.HandoffPassesFDs(mode) {
				tests = append(tests[:len(tests):len(tests)], fdModeTests...)
			}
			for _, tc := range tests {
				t.Run(tc.name, tc.f)
			}
		})
	}
}
