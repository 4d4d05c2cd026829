//go:build race

package dht_test

// raceEnabled: the race detector slows packet handling ~10x, so timing
// goals are checked with a wider bound.
const raceEnabled = true
