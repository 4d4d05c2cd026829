module github.com/dwebswarm/dwebswarm-go/plugins/utp/interop

go 1.26.8

replace github.com/dwebswarm/dwebswarm-go => ../../..

require (
	github.com/anacrolix/go-libutp v1.3.2
	github.com/anacrolix/utp v0.2.0
	github.com/dwebswarm/dwebswarm-go v0.0.0-00010101000000-000000000000
)

require (
	filippo.io/edwards25519 v1.0.0-rc.1 // indirect
	github.com/anacrolix/generics v0.0.0-20230816105729-c755655aee45 // indirect
	github.com/anacrolix/log v0.15.2 // indirect
	github.com/anacrolix/missinggo v1.3.0 // indirect
	github.com/anacrolix/missinggo/perf v1.0.0 // indirect
	github.com/anacrolix/missinggo/v2 v2.7.1 // indirect
	github.com/anacrolix/mmsg v1.0.1 // indirect
	github.com/anacrolix/sync v0.4.0 // indirect
	github.com/flynn/noise v1.1.0 // indirect
	github.com/huandu/xstrings v1.3.2 // indirect
	github.com/jonboulle/clockwork v0.5.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/exp v0.0.0-20221217163422-3c43f8badb15 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
