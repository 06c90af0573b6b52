package main

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"time"

	"github.com/agentg/agentg/admin"
)

// The CLI's side of the admin API: how a command finds the running
// agentg (--admin, the data directory's token) and falls back to the
// data directory's files when none answers.

// errNoServer says no agentg could be asked: the API is off, there is no
// token, or nothing listens.
var errNoServer = errors.New("no running agentg")

// client returns a client of the running agentg's admin API, or an error
// wrapping errNoServer when there is no way to reach one.
func (a *adminFlags) client(dataDir string) (*admin.Client, error) {
	if a.addr == admin.Off {
		return nil, fmt.Errorf("%w: --admin off", errNoServer)
	}
	var tok string
	var err error
	switch {
	case a.tokenFile != "":
		tok, err = admin.ReadTokenFile(a.tokenFile)
	case dataDir == "":
		return nil, fmt.Errorf("%w: no data directory to read the admin token from (set --data-dir or --admin-token-file)", errNoServer)
	default:
		tok, err = admin.ReadToken(dataDir)
		if errors.Is(err, iofs.ErrNotExist) {
			// No agentg ever served with this data directory.
			return nil, fmt.Errorf("%w: %v", errNoServer, err)
		}
	}
	if err != nil {
		return nil, err
	}
	addr := a.addr
	if !a.explicit && dataDir != "" {
		// The agentg serving with this data directory said where it
		// listens; another on the default port is not the one asked.
		addr, err = admin.ReadAddr(dataDir)
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, fmt.Errorf("%w: none serves with data directory %s", errNoServer, dataDir)
		}
		if err != nil {
			return nil, err
		}
	}
	a.asked = addr
	return admin.NewClient(addr, tok)
}

// fromServer asks the running agentg (call is a Client method, such as
// (*admin.Client).Pins); ok is false when none answers (the
// caller then reads the data directory, as without a server).
func fromServer[T any](a *adminFlags, dataDir string, call func(*admin.Client, context.Context) (T, error)) (v T, ok bool, err error) {
	c, err := a.client(dataDir)
	if errors.Is(err, errNoServer) {
		return v, false, nil
	}
	if err != nil {
		return v, false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err = call(c, ctx)
	if errors.Is(err, admin.ErrNotRunning) {
		return v, false, nil
	}
	return v, true, explainAPIError(c.Addr(), dataDir, err)
}

// explainAPIError adds what to do about a refused token.
func explainAPIError(addr, dataDir string, err error) error {
	var ae *admin.APIError
	if errors.As(err, &ae) && ae.Status == 401 {
		return fmt.Errorf("%w\nthe agentg at %s does not take the token of %s: is it running with another --data-dir or --admin-token-file? (--admin off reads the data directory instead)", err, addr, dataDir)
	}
	return err
}
