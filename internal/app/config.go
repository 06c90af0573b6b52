package app

import (
	"github.com/agentg/agentg/internal/buildinfo"
	"io"
	"time"
)

// Config is everything one agentg needs to start. cmd/agentg fills it
// from serve's flags (and checks their values there, where an error can
// name the flag); tests fill it by hand. Zero durations and counts are
// not defaults: the caller gives every value (see cmd/agentg's flags for
// the documented defaults).
type Config struct {
	// PolicyFile is the policy (YAML); "" serves DefaultPolicy, which
	// then cannot be reloaded.
	PolicyFile    string
	DefaultPolicy []byte // the embedded policy, named DefaultPolicySource
	Listen        string // the explicit proxy's address (host:port; port 0 picks one)

	// Where events go: LogFile (appended) when set, else Stdout.
	// Operational failures of the log itself are said on Stderr.
	Stdout, Stderr   io.Writer
	LogFile          string
	LogFlushInterval time.Duration // with LogFile: how often gathered events are written; 0 writes each at once

	ShutdownTimeout    time.Duration // grace for in-flight requests and tunnels
	ReloadInterval     time.Duration // policy and pin files polled this often; 0: only Reload
	FirstBytesTimeout  time.Duration
	TunnelIdleTimeout  time.Duration
	MaxTunnels         int // -1: no cap
	MaxTunnelsPerAgent int // -1: no cap
	InventoryInterval  time.Duration
	ReadHeaderTimeout  time.Duration
	BodyIdleTimeout    time.Duration

	// Transparent, when set, is the transparent listener's address; Mark
	// is then the SO_MARK on agentg's own connections (0: none).
	Transparent string
	Mark        int

	// Gateway, when set, is where the MCP gateway door listens
	// (host:port or unix:/path); it serves MCP at gateway.Path.
	Gateway string
	// GatewayTLSCert and GatewayTLSKey, both or neither, are the PEM
	// certificate chain and key the gateway door serves TLS with; without
	// them it serves plain HTTP (and a gateway: mtls section can prove no
	// one).
	GatewayTLSCert, GatewayTLSKey string

	CA              CAConfig
	UpstreamCAFiles []string // PEM roots trusted for intercepted upstreams, besides the system's
	// VaultKey is the key of the token vault in CA.DataDir (creds/vault):
	// "" or "file" for vault.key there, else a KMS URI whose RSA key wraps
	// the vault's data key.
	VaultKey string

	// DNS is where the DNS filter listens; empty: the filter is off.
	DNS       []string
	Admin     AdminConfig
	Approvals ApprovalConfig
	OTLP      OTLPConfig

	// Build is the binary's identity: its version is said in the
	// "agentg serving" line and the gateway's serverInfo, all of it in
	// the agentg_build_info metric.
	Build buildinfo.Info
}

// AdminConfig is the admin API's listener, token and client bounds.
type AdminConfig struct {
	Addr              string // host:port, unix:/path, or admin.Off
	TokenFile         string // "": <data dir>/admin.token, generated on first run
	ReadHeaderTimeout time.Duration
	BodyTimeout       time.Duration
	MaxConns          int // -1: no cap
}

// ApprovalConfig is how calls are held for approval.
type ApprovalConfig struct {
	KeepAlive  time.Duration // comment line this often on a held event stream
	MaxPending int
	Webhook    string // POST each pending approval here (signed)
	SecretFile string // the webhook's HMAC secret; required with Webhook
}

// OTLPConfig is the OpenTelemetry export of events (audit/otlp); off
// when Endpoint is "".
type OTLPConfig struct {
	Endpoint string            // the collector's OTLP/HTTP URL
	Headers  map[string]string // sent with every export; never logged
	Queue    int               // events that may wait for the exporter; 0: otlp.DefaultQueue
}
