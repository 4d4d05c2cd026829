//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyReload delivers SIGHUP, the reload request, on ch.
func notifyReload(ch chan<- os.Signal) { signal.Notify(ch, syscall.SIGHUP) }
