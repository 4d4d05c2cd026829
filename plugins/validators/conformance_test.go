package validators_test

import (
	"testing"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/conformance/builtin"
)

func TestConformanceCIDR(t *testing.T) { conformance.RunValidatorSuite(t, builtin.CIDR()) }

func TestConformanceDHTPrivate(t *testing.T) {
	conformance.RunValidatorSuite(t, builtin.DHTPrivate())
}

func TestConformanceRateLimit(t *testing.T) { conformance.RunValidatorSuite(t, builtin.RateLimit()) }

func TestConformanceBanList(t *testing.T) { conformance.RunValidatorSuite(t, builtin.BanList()) }
