package creds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/agentg/agentg/certs"
)

// Kind says where a secret comes from.
type Kind uint8

const (
	KindEnv     Kind = iota + 1 // an environment variable
	KindFile                    // a file, read once per policy load
	KindCommand                 // a command's standard output, run without a shell
	KindInline                  // the policy itself (insecure_inline: for tests and demos)
	// KindKMS is a private key a go.step.sm/crypto/kms URI names: it signs
	// (a client certificate's handshake) and has no value to read or send.
	KindKMS
)

// DefaultTimeout bounds a command source that names no timeout.
const DefaultTimeout = 10 * time.Second

// maxValue bounds what a file or a command may give: a secret is a token,
// not a document.
const maxValue = 64 << 10

// Source is where one secret comes from. Its inline value, if any, is
// unexported and never printed.
type Source struct {
	Kind    Kind
	Env     string        // KindEnv: the variable's name
	Path    string        // KindFile: the file
	Argv    []string      // KindCommand: the program and its arguments
	Timeout time.Duration // KindCommand: 0 is DefaultTimeout
	inline  string
	uri     string // KindKMS: the key's URI, which may carry a PIN: unexported, so no JSON shows it
}

// Inline is a source whose value is written in the policy.
func Inline(v string) Source { return Source{Kind: KindInline, inline: v} }

// KMS is a private key a go.step.sm/crypto/kms URI names (a client
// certificate's key).
func KMS(uri string) Source { return Source{Kind: KindKMS, uri: uri} }

// KeyURI is a KindKMS source's URI, PIN and all, for opening the KMS
// only: String is what may be shown.
func (s Source) KeyURI() string { return s.uri }

// String says where the value comes from, never what it is.
func (s Source) String() string {
	switch s.Kind {
	case KindEnv:
		return "env " + s.Env
	case KindFile:
		return "file " + s.Path
	case KindCommand:
		if len(s.Argv) > 0 {
			return "command " + s.Argv[0]
		}
		return "command"
	case KindInline:
		return "insecure_inline"
	case KindKMS:
		return "kms " + certs.RedactKeyURI(s.uri)
	}
	return "no source"
}

// GoString is String: %#v must not print the inline value.
func (s Source) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Source) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// read gets the value now. Errors name the secret and the source, never
// a value, and never the command's output.
func (s Source) read(ctx context.Context, name string) (Secret, error) {
	fail := func(reason string) (Secret, error) {
		return Secret{}, &Error{Secret: name, Source: s.String(), Reason: reason}
	}
	var v string
	switch s.Kind {
	case KindEnv:
		val, ok := os.LookupEnv(s.Env)
		if !ok {
			return fail("the environment variable is not set")
		}
		v = val
	case KindFile:
		b, err := readFile(s.Path)
		if err != nil {
			return fail(err.Error())
		}
		v = trimNewline(string(b))
	case KindCommand:
		b, err := s.run(ctx)
		if err != nil {
			return fail(err.Error())
		}
		v = trimNewline(string(b))
	case KindInline:
		v = s.inline
	case KindKMS:
		return fail("a KMS key signs a client certificate's handshake; it has no value to send")
	default:
		return fail("no source")
	}
	if v == "" {
		return fail("the value is empty")
	}
	if strings.ContainsAny(v, "\r\n\x00") {
		// It would split or end a header line.
		return fail("the value contains a line break or NUL")
	}
	return Secret{name: name, value: v}, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("cannot open the file: %v", pe.Err)
		}
		return nil, errors.New("cannot open the file")
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxValue+1))
	if err != nil {
		return nil, errors.New("cannot read the file")
	}
	if n > maxValue {
		return nil, fmt.Errorf("the file is larger than %d bytes", maxValue)
	}
	return buf.Bytes(), nil
}

// run runs the command without a shell, within its timeout, and returns
// its standard output. Its standard error is not kept: a tool that echoes
// what it read would put the value in an error.
func (s Source) run(ctx context.Context) ([]byte, error) {
	if len(s.Argv) == 0 {
		return nil, errors.New("no command")
	}
	t := s.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Argv[0], s.Argv[1:]...)
	var out capped
	cmd.Stdout = &out
	cmd.WaitDelay = time.Second // a grandchild holding stdout open does not hold us
	err := cmd.Run()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("the command did not finish within %v", t)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("the command failed: %v", ee.ProcessState)
		}
		var pe *exec.Error
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("cannot run the command: %v", pe.Err)
		}
		var fe *os.PathError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("cannot run the command: %v", fe.Err)
		}
		return nil, errors.New("the command failed")
	case out.over:
		return nil, fmt.Errorf("the command wrote more than %d bytes", maxValue)
	}
	return out.b, nil
}

// capped keeps at most maxValue bytes, and says when there were more.
type capped struct {
	b    []byte
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	q := p
	if room := maxValue - len(c.b); len(q) > room {
		c.over = true
		q = q[:max(room, 0)]
	}
	c.b = append(c.b, q...)
	return len(p), nil // the rest is dropped, not an error: the command must not block
}

// trimNewline removes one trailing "\n" or "\r\n".
func trimNewline(s string) string {
	s, ok := strings.CutSuffix(s, "\n")
	if ok {
		s = strings.TrimSuffix(s, "\r")
	}
	return s
}
