package remote

import (
	"context"
	"fmt"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

var (
	_ framework.PeerValidator = (*Validator)(nil)
	_ framework.Ordered       = (*Validator)(nil)
)

// Validator is a [framework.PeerValidator] served by a plugin binary. A
// plugin that fails, times out or is down rejects the peer (fail closed),
// with an error saying why.
type Validator struct {
	p     *proc
	order int
}

// NewValidator starts the plugin binary and checks that it serves a validator.
func NewValidator(cfg Config) (*Validator, error) {
	p, err := newProc(cfg, KindValidator)
	if err != nil {
		return nil, err
	}
	return &Validator{p: p, order: int(p.info.GetOrder())}, nil
}

// Name returns the plugin's name (or Config.Name).
func (v *Validator) Name() string { return v.p.name }

// Order returns the plugin's order (framework.Ordered).
func (v *Validator) Order() int { return v.order }

// PID returns the process id of the running plugin, 0 while none runs.
func (v *Validator) PID() int { return v.p.pid() }

// Close stops the plugin.
func (v *Validator) Close() error { v.p.close(); return nil }

// Validate asks the plugin. nil accepts; the plugin's rejection comes back
// as an error with its message (wrapping framework.ErrRejected when the
// plugin's did).
func (v *Validator) Validate(ctx context.Context, peer framework.Peer) error {
	var rejection error
	err := v.p.call(ctx, "Validate", func(ctx context.Context, inst *instance) error {
		reply, err := pb.NewValidatorClient(inst.conn).Validate(ctx, wire.PeerToProto(peer))
		if err != nil {
			return err
		}
		rejection = wire.DecodeError(reply.GetRejection())
		if (rejection == nil) != reply.GetAccepted() {
			return wire.BadReply("validate reply accepted=%v with rejection %v", reply.GetAccepted(), rejection)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: validator plugin %s failed: %w", framework.ErrRejected, v.p.name, err)
	}
	return rejection
}
