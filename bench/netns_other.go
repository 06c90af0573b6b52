//go:build !linux

package bench

import (
	"context"
	"errors"
	"net/http"

	"github.com/agentg/agentg/internal/testenv"
)

// NetnsEnv is the namespace bench's environment; Linux only.
type NetnsEnv struct {
	Dir                                string
	HTTPBase, HTTPSBase, InterceptBase string
	Agentg                             *testenv.Agentg
	Binary                             string
	Namespaces                         []string
	Rules                              string
}

// NetnsPolicy is the namespace bench's policy (Linux only).
const NetnsPolicy = ""

// StartNetns fails: network namespaces are Linux's.
func StartNetns(NetnsConfig) (*NetnsEnv, error) {
	return nil, errors.New("the transparent bench needs Linux network namespaces")
}

func (e *NetnsEnv) ClientFor(Mode, Scenario, int) *http.Client { return http.DefaultClient }
func (e *NetnsEnv) DoorEvents() (int64, int64)                 { return 0, 0 }
func (e *NetnsEnv) Marker(context.Context, Mode, string) error {
	return errors.New("the transparent bench needs Linux network namespaces")
}
func (e *NetnsEnv) Shutdown() error { return nil }
func (e *NetnsEnv) Close()          {}
