package devstack

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	tlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// TemporalConfig configures the embedded Temporal server.
type TemporalConfig struct {
	// DataDir holds the SQLite database (temporal.db); empty means in memory.
	DataDir string
	// Host to bind (default 127.0.0.1).
	Host string
	// Port of the frontend gRPC API (default 7233). History, matching and
	// the internal worker use Port+1, Port+2 and Port+6.
	Port int
	// UIPort of the Web UI (default Port+1000); -1 disables the UI.
	UIPort int
	// Namespace created at start (default "default").
	Namespace string
	// LogLevel of the server's own log (default "warn").
	LogLevel string
}

func (c TemporalConfig) withDefaults() TemporalConfig {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = 7233
	}
	if c.UIPort == 0 {
		c.UIPort = c.Port + 1000
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.LogLevel == "" {
		c.LogLevel = "warn"
	}
	return c
}

// Temporal is a running embedded Temporal server and Web UI.
type Temporal struct {
	// Address is the frontend's host:port.
	Address string
	// UIURL is the Web UI's base URL ("" when disabled).
	UIURL  string
	srv    temporal.Server
	ui     *uiserver.Server
	logger *quietLogger
	log    *slog.Logger
}

// checkTemporalPorts reports the first busy port the server would need.
func checkTemporalPorts(c TemporalConfig, portFlag, uiFlag string) error {
	for _, p := range []struct {
		port int
		what string
	}{{c.Port, "Temporal frontend gRPC"}, {c.Port + 1, "Temporal history"}, {c.Port + 2, "Temporal matching"}, {c.Port + 6, "Temporal worker service"}} {
		if err := checkFree(hostPort(c.Host, p.port), p.what, portFlag); err != nil {
			return err
		}
	}
	if c.UIPort > 0 {
		return checkFree(hostPort(c.Host, c.UIPort), "Temporal Web UI", uiFlag)
	}
	return nil
}

// StartTemporal starts a Temporal server (frontend, history, matching and
// worker services in this process, SQLite persistence) and its Web UI.
func StartTemporal(c TemporalConfig, log *slog.Logger) (*Temporal, error) {
	c = c.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	sqlCfg := config.SQL{PluginName: sqliteplugin.PluginName}
	if c.DataDir == "" {
		sqlCfg.DatabaseName = fmt.Sprintf("sluice-%d", time.Now().UnixNano())
		sqlCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
	} else {
		if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating Temporal data dir: %w", err)
		}
		sqlCfg.DatabaseName = filepath.Join(c.DataDir, "temporal.db")
		sqlCfg.ConnectAttributes = map[string]string{"mode": "rwc", "_journal_mode": "wal", "_synchronous": "normal"}
	}
	fresh := true
	if c.DataDir != "" {
		if _, err := os.Stat(sqlCfg.DatabaseName); err == nil {
			fresh = false
		}
	}
	if fresh {
		if err := sqliteschema.SetupSchema(&sqlCfg); err != nil {
			return nil, fmt.Errorf("creating Temporal schema: %w", err)
		}
	}
	const clusterName = "active"
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, c.Namespace, false, nil)
	if err != nil {
		return nil, fmt.Errorf("configuring namespace %s: %w", c.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(&sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", c.Namespace, err)
	}

	frontend := hostPort(c.Host, c.Port)
	svc := func(port int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: c.Host}}
	}
	cfg := &config.Config{
		Global: config.Global{Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: c.Host}},
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: &sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend, ClusterID: "6b1e3a52-2f4e-4c1b-9a7d-5c2f0e8d4a11"},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			"frontend": svc(c.Port),
			"history":  svc(c.Port + 1),
			"matching": svc(c.Port + 2),
			"worker":   svc(c.Port + 6),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: frontend},
	}
	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(frontend),
		primitives.HistoryService:  static.SingleLocalHost(hostPort(c.Host, c.Port+1)),
		primitives.MatchingService: static.SingleLocalHost(hostPort(c.Host, c.Port+2)),
		primitives.WorkerService:   static.SingleLocalHost(hostPort(c.Host, c.Port+6)),
	}
	dyn := dynamicconfig.NewMemoryClient()
	logger := &quietLogger{Logger: tlog.NewZapLogger(tlog.BuildZapLogger(tlog.Config{Level: c.LogLevel, Format: "console"}))}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithDynamicConfigClient(dyn),
	)
	if err != nil {
		return nil, fmt.Errorf("creating Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("starting Temporal server on %s: %w", frontend, err)
	}
	t := &Temporal{Address: frontend, srv: srv, log: log, logger: logger}
	if c.UIPort > 0 {
		t.ui = uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
			Host:                c.Host,
			Port:                c.UIPort,
			TemporalGRPCAddress: frontend,
			EnableUI:            true,
			HideLogs:            true,
			DisableNewsFetch:    true,
			DefaultNamespace:    c.Namespace,
			CORS:                uiconfig.CORS{CookieInsecure: true},
		}))
		go func() {
			if err := t.ui.Start(); err != nil && err != http.ErrServerClosed {
				log.Error("temporal web UI stopped", "err", err)
			}
		}()
		t.UIURL = "http://" + hostPort(c.Host, c.UIPort)
	}
	return t, nil
}

// Stop stops the UI and then the server.
func (t *Temporal) Stop() {
	t.logger.quiet.Store(true) // shutdown chatter is expected: errors only
	if t.ui != nil {
		t.ui.Stop()
	}
	if err := t.srv.Stop(); err != nil {
		t.log.Warn("stopping Temporal server", "err", err)
	}
}

// quietLogger drops the server's log once quiet is set: during a normal
// shutdown its services report each other's closed connections, with stack
// traces, which says nothing about Sluice.
type quietLogger struct {
	tlog.Logger
	quiet atomic.Bool
}

func (l *quietLogger) Debug(msg string, tags ...tag.Tag) {
	if !l.quiet.Load() {
		l.Logger.Debug(msg, tags...)
	}
}

func (l *quietLogger) Info(msg string, tags ...tag.Tag) {
	if !l.quiet.Load() {
		l.Logger.Info(msg, tags...)
	}
}

func (l *quietLogger) Warn(msg string, tags ...tag.Tag) {
	if !l.quiet.Load() {
		l.Logger.Warn(msg, tags...)
	}
}

func (l *quietLogger) Error(msg string, tags ...tag.Tag) {
	if !l.quiet.Load() {
		l.Logger.Error(msg, tags...)
	}
}
