package main

import "os"

// notifyReload does nothing: Windows has no SIGHUP, so a running daemon is
// not reloaded (restart it to apply a changed config).
func notifyReload(chan<- os.Signal) {}
