// Command brokenplugin serves the deliberately broken transport or
// validator of package broken out of process: brokenplugin transport|validator.
package main

import (
	"fmt"
	"os"

	"github.com/dwebswarm/dwebswarm-go/examples/internal/brokenplugin/broken"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/sdk"
)

func main() {
	switch kind := append(os.Args, "")[1]; kind {
	case "transport":
		sdk.ServeTransport(broken.NewTransport())
	case "validator":
		sdk.ServeValidator(broken.Validator{})
	default:
		fmt.Fprintln(os.Stderr, "usage: brokenplugin transport|validator")
		os.Exit(2)
	}
}
