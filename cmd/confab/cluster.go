package main

import (
	"flag"
	"fmt"
	"log/slog"

	"github.com/confab-sfu/confab/room/cluster"
)

// clusterFlags make this server one node of a cluster over NATS: -nats
// joins an existing NATS deployment, -nats-embed runs a NATS server in
// the process (its routes join the other nodes'). Neither: a single
// server, no NATS at all.
type clusterFlags struct {
	natsURLs     string
	natsCreds    string
	natsUser     string
	natsPassword string
	natsToken    string
	natsTLSCA    string
	natsTLSCert  string
	natsTLSKey   string
	natsEmbed    bool
	natsListen   string
	natsCluster  string
	natsRoutes   string
	natsName     string
	nodeID       string
	advertiseURL string
}

func addClusterFlags(fs *flag.FlagSet, c *clusterFlags) {
	fs.StringVar(&c.natsURLs, "nats", "", "comma-separated URLs of a NATS cluster to join as one node of a Confab cluster, e.g. nats://10.0.0.1:4222,nats://10.0.0.2:4222 (default: a single server, no NATS)")
	fs.StringVar(&c.natsCreds, "nats-creds", "", "NATS user credentials file (JWT and nkey seed) for -nats")
	fs.StringVar(&c.natsUser, "nats-user", "", "NATS user; with -nats-embed also required of clients and of the other nodes' routes")
	fs.StringVar(&c.natsPassword, "nats-password", "", "password of -nats-user")
	fs.StringVar(&c.natsToken, "nats-token", "", "NATS token (instead of a user); with -nats-embed also required of clients and routes")
	fs.StringVar(&c.natsTLSCA, "nats-tls-ca", "", "PEM file of the CAs that sign the NATS servers' certificates (-nats)")
	fs.StringVar(&c.natsTLSCert, "nats-tls-cert", "", "client certificate (PEM) for NATS servers that verify clients (-nats)")
	fs.StringVar(&c.natsTLSKey, "nats-tls-key", "", "private key (PEM) of -nats-tls-cert")
	fs.BoolVar(&c.natsEmbed, "nats-embed", false, "run a NATS server inside this process and join the cluster through it")
	fs.StringVar(&c.natsListen, "nats-listen", "127.0.0.1:4222", "client address of the embedded NATS server (-nats-embed)")
	fs.StringVar(&c.natsCluster, "nats-cluster-listen", "", "route address of the embedded NATS server, which the other nodes' -nats-routes point at, e.g. 0.0.0.0:6222 (-nats-embed; empty: a lone server)")
	fs.StringVar(&c.natsRoutes, "nats-routes", "", "comma-separated route addresses of the other nodes' embedded NATS servers, host:port (listing this node's own is harmless)")
	fs.StringVar(&c.natsName, "nats-cluster-name", "confab", "NATS cluster name, the same on every node (-nats-embed)")
	fs.StringVar(&c.nodeID, "node-id", "", "this node's id in the cluster: letters, digits, '-' and '_' (default: random at every start)")
	fs.StringVar(&c.advertiseURL, "advertise-url", "", "the URL clients reach this node at, announced to the other nodes")
}

// check validates the cluster flags together.
func (c *clusterFlags) check() error {
	embedOnly := c.natsCluster != "" || c.natsRoutes != "" || c.natsListen != "127.0.0.1:4222"
	switch {
	case c.natsURLs != "" && c.natsEmbed:
		return fmt.Errorf("-nats and -nats-embed exclude each other: join an existing NATS, or run one in this process")
	case !c.natsEmbed && embedOnly:
		return fmt.Errorf("-nats-listen, -nats-cluster-listen and -nats-routes need -nats-embed")
	case c.natsRoutes != "" && c.natsCluster == "":
		return fmt.Errorf("-nats-routes need -nats-cluster-listen: routes connect embedded servers to each other")
	case c.natsEmbed && (c.natsCreds != "" || c.natsTLSCA != "" || c.natsTLSCert != "" || c.natsTLSKey != ""):
		return fmt.Errorf("-nats-creds and -nats-tls-* apply to -nats, not -nats-embed")
	case !c.enabled() && (c.nodeID != "" || c.advertiseURL != "" || c.natsCreds != "" || c.natsUser != "" ||
		c.natsPassword != "" || c.natsToken != "" || c.natsTLSCA != "" || c.natsTLSCert != "" || c.natsTLSKey != ""):
		return fmt.Errorf("the -nats-* credentials, -node-id and -advertise-url need -nats or -nats-embed")
	case (c.natsTLSCert == "") != (c.natsTLSKey == ""):
		return fmt.Errorf("-nats-tls-cert and -nats-tls-key go together")
	case c.natsToken != "" && (c.natsUser != "" || c.natsPassword != "" || c.natsCreds != ""):
		return fmt.Errorf("-nats-token excludes -nats-user, -nats-password and -nats-creds")
	}
	return nil
}

func (c *clusterFlags) enabled() bool { return c.natsURLs != "" || c.natsEmbed }

// config is the cluster part of the rooms' configuration, nil without a
// cluster.
func (c *clusterFlags) config(logger *slog.Logger) *cluster.Config {
	if !c.enabled() {
		return nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	cc := &cluster.Config{
		URLs:      splitList(c.natsURLs),
		CredsFile: c.natsCreds, User: c.natsUser, Password: c.natsPassword, Token: c.natsToken,
		TLSCA: c.natsTLSCA, TLSCert: c.natsTLSCert, TLSKey: c.natsTLSKey,
		NodeID: c.nodeID, AdvertiseURL: c.advertiseURL,
		Logger: logger.With("component", "cluster"),
	}
	if c.natsEmbed {
		cc.Embed = &cluster.EmbedConfig{Listen: c.natsListen, ClusterListen: c.natsCluster,
			Routes: splitList(c.natsRoutes), ClusterName: c.natsName}
	}
	return cc
}
