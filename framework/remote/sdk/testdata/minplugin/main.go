// Command minplugin is the smallest plugin binary: one validator served
// with package sdk and nothing else. deps_test.go builds it and checks what
// it links.
package main

import (
	"context"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/sdk"
)

type acceptAll struct{}

func (acceptAll) Name() string                                   { return "accept-all" }
func (acceptAll) Validate(context.Context, framework.Peer) error { return nil }

func main() { sdk.ServeValidator(acceptAll{}) }
