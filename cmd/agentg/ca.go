package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/internal/app"
)

// caFlags are the flags that say where the CA comes from; serve and every
// `ca` subcommand share them.
type caFlags struct {
	dataDir, cert, key string
}

func (c *caFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data-dir", certs.DefaultDir(), "directory holding agentg's own CA (ca.crt, ca.key)")
	fs.StringVar(&c.cert, "ca-cert", "", "bring your own CA: PEM chain, signing certificate first (with --ca-key)")
	fs.StringVar(&c.key, "ca-key", "", "key of --ca-cert: a file, or a KMS URI such as softkms:path=/abs/key.pem")
}

// config is the CA part of app.Config.
func (c *caFlags) config() app.CAConfig {
	return app.CAConfig{DataDir: c.dataDir, Cert: c.cert, Key: c.key}
}

// load returns the configured CA; create says whether agentg's own CA may
// be created when missing (serve), rather than reported missing.
func (c *caFlags) load(create bool) (ca *certs.CA, created bool, err error) {
	return app.LoadCA(c.config(), create)
}

func runCA(args []string, stdout, stderr io.Writer) error {
	subs := map[string]func([]string, io.Writer, io.Writer) error{
		"init": runCAInit, "export": runCAExport, "show": runCAShow, "trust-env": runCATrustEnv,
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, "Usage: agentg ca init|export|show|trust-env [flags]")
		fmt.Fprintln(stderr, "\n  init       create agentg's CA (--force replaces an existing one)")
		fmt.Fprintln(stderr, "  export     print the CA certificate (--format pem|der); never the key")
		fmt.Fprintln(stderr, "  show       print the CA's subject, fingerprint and validity")
		fmt.Fprintln(stderr, "  trust-env  print the environment lines that make common clients trust the CA")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	run, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "agentg ca: unknown subcommand %q\n", args[0])
		return errUsage
	}
	return run(args[1:], stdout, stderr)
}

func runCAInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca init", "[--force] [--data-dir DIR]", stderr)
	var cf caFlags
	cf.register(fs)
	force := fs.Bool("force", false, "replace an existing CA (clients trusting the old one stop trusting agentg)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ca, err := certs.Init(cf.dataDir, *force)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created CA in %s\n%s", cf.dataDir, ca.Show())
	return nil
}

func runCAExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca export", "[--format pem|der] [--data-dir DIR]", stderr)
	format := fs.String("format", "pem", "pem or der")
	ca, _, err := loadCAFromFlags(fs, args)
	if err != nil {
		return err
	}
	defer ca.Close()
	switch *format {
	case "pem":
		_, err = stdout.Write(ca.PEM())
	case "der":
		_, err = stdout.Write(ca.Certificate().Raw)
	default:
		fmt.Fprintf(stderr, "agentg ca export: --format must be pem or der, not %q\n", *format)
		return errUsage
	}
	return err
}

func runCAShow(args []string, stdout, stderr io.Writer) error {
	ca, _, err := loadCAFromFlags(newFlagSet("ca show", "[--data-dir DIR]", stderr), args)
	if err != nil {
		return err
	}
	defer ca.Close()
	fmt.Fprint(stdout, ca.Show())
	return nil
}

func runCATrustEnv(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca trust-env", "[--data-dir DIR] [--roots FILE]", stderr)
	roots := fs.String("roots", "", "PEM roots the bundle starts from (a corporate bundle); default the system's, or the file an earlier --roots named")
	// Loading fails here, not later in the agent, when there is no CA.
	ca, cf, err := loadCAFromFlags(fs, args)
	if err != nil {
		return err
	}
	defer ca.Close()
	file := cf.cert
	if file == "" {
		file = filepath.Join(cf.dataDir, certs.CertFile)
	}
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	if *roots != "" {
		if *roots, err = filepath.Abs(*roots); err != nil {
			return fmt.Errorf("--roots: %w", err)
		}
	}
	// The bundle, made now and remade by serve at each start, so that it
	// follows the system's roots and the CA.
	bundle, from, err := ca.WriteBundle(cf.dataDir, *roots)
	switch {
	case err == nil:
		if abs, err := filepath.Abs(bundle); err == nil {
			bundle = abs
		}
		fmt.Fprintf(stderr, "agentg ca trust-env: wrote %s (the roots of %s, then the agentg CA)\n", bundle, from)
	case *roots != "":
		return err
	default:
		bundle = "" // no system roots: TrustEnv says what that breaks
		fmt.Fprintf(stderr, "agentg ca trust-env: %v\n", err)
	}
	fmt.Fprint(stdout, certs.TrustEnv(file, bundle))
	return nil
}

// loadCAFromFlags adds the CA flags to fs, parses args and loads the
// existing CA they name.
func loadCAFromFlags(fs *flag.FlagSet, args []string) (*certs.CA, caFlags, error) {
	var cf caFlags
	cf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, cf, err
	}
	ca, _, err := cf.load(false)
	return ca, cf, err
}
