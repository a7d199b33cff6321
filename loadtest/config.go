package loadtest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Config describes one load run. Every loop in a run is bounded by
// Duration (plus join and leave time) and stops by itself.
type Config struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080, or the
	// nodes of a cluster, comma-separated: participants are spread over
	// them as Spread says.
	URL          string
	Scenario     string        // "meeting", "lecture" or "churn"
	Participants int           // meeting: participants per room, all publish
	Viewers      int           // lecture: receive-only viewers per room
	Rooms        int           // rooms, each with the scenario's people
	Duration     time.Duration // how long media flows once everyone joined
	Ramp         float64       // joins per second (0: all at once)
	Video        bool          // publish video (audio is always published)
	Simulcast    bool          // publish video as three layers
	Layer        string        // subscriber policy: auto, low, medium or high
	Loopback     bool          // restrict ICE to loopback
	// ViewerProtocol is how lecture viewers connect: "ws" (the signaling
	// WebSocket, the default) or "whep".
	ViewerProtocol string
	// PresenterProtocol is how lecture presenters publish: "ws" (default)
	// or "whip".
	PresenterProtocol string
	// Spread is how participants are spread over several nodes:
	// "participants" (the default: in joining order, round robin; a
	// lecture's presenter on the first node, its viewers round robin over
	// all, the first on the first) or "rooms" (each room on one node, the
	// rooms round robin: for nodes that are not a cluster).
	Spread string
	// Reconnect makes WebSocket participants rejoin through the other
	// nodes when their connection is lost (client.Reconnect; off by
	// default). Rejoins are counted in the report.
	Reconnect bool
	// ServerPID is the server's process on this machine (one node): its
	// system calls and context switches during the media window are
	// counted (perf stat, else /proc) per packet it forwarded.
	ServerPID int
	Logger    *slog.Logger
	Progress  io.Writer // a live line while running; nil for none

	nodes []string // URL split into nodes, by check
}

// check fills in defaults and refuses what cannot run.
func (cfg *Config) check() error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rooms <= 0 {
		cfg.Rooms = 1
	}
	nodes, err := splitNodes(cfg.URL)
	if err != nil {
		return err
	}
	cfg.nodes = nodes
	if cfg.ServerPID > 0 && len(nodes) > 1 {
		return errors.New("a server pid goes with one server URL, not several nodes")
	}
	if cfg.Spread == "" {
		cfg.Spread = SpreadParticipants
	}
	if cfg.Spread != SpreadParticipants && cfg.Spread != SpreadRooms {
		return fmt.Errorf("spread %q: want %s or %s", cfg.Spread, SpreadParticipants, SpreadRooms)
	}
	if cfg.ViewerProtocol == "" {
		cfg.ViewerProtocol = "ws"
	}
	if cfg.PresenterProtocol == "" {
		cfg.PresenterProtocol = "ws"
	}
	if cfg.ViewerProtocol != "ws" && cfg.ViewerProtocol != "whep" {
		return fmt.Errorf("viewer protocol %q: want ws or whep", cfg.ViewerProtocol)
	}
	if cfg.PresenterProtocol != "ws" && cfg.PresenterProtocol != "whip" {
		return fmt.Errorf("presenter protocol %q: want ws or whip", cfg.PresenterProtocol)
	}
	if (cfg.ViewerProtocol == "whep" || cfg.PresenterProtocol == "whip") && cfg.Scenario != "lecture" {
		return errors.New("WHIP presenters and WHEP viewers are for the lecture scenario")
	}
	return nil
}

// Ways of spreading participants over nodes (Config.Spread).
const (
	SpreadParticipants = "participants"
	SpreadRooms        = "rooms"
)

// splitNodes reads a comma-separated list of node base URLs.
func splitNodes(list string) ([]string, error) {
	var nodes []string
	seen := map[string]bool{}
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("url %q: want http(s)://host:port", raw)
		}
		switch u.Scheme {
		case "http", "https", "ws", "wss":
		default:
			return nil, fmt.Errorf("url %q: want http, https, ws or wss", raw)
		}
		if seen[raw] {
			return nil, fmt.Errorf("url %q given twice", raw)
		}
		seen[raw] = true
		nodes = append(nodes, raw)
	}
	return nodes, nil
}

// plan is one participant a run brings in.
type plan struct {
	room, name string
	publish    bool
	expect     int // tracks this peer should receive
	node       int // index of the node it joins through
}

// overHTTP says whether the participant uses WHIP or WHEP rather than the
// signaling WebSocket.
func (cfg *Config) overHTTP(pl plan) bool {
	return (pl.publish && cfg.PresenterProtocol == "whip") || (!pl.publish && cfg.ViewerProtocol == "whep")
}

// plans lists the participants of every room in joining order, each with
// its node (see Config.Spread).
func (cfg *Config) plans() ([]plan, error) {
	var plans []plan
	tracksPer := 1
	if cfg.Video {
		tracksPer = 2
	}
	for r := 0; r < cfg.Rooms; r++ {
		room := fmt.Sprintf("load-%s-%d", cfg.Scenario, r)
		switch cfg.Scenario {
		case "meeting", "churn":
			if cfg.Participants < 2 {
				return nil, errors.New("meeting needs at least 2 participants")
			}
			for i := 0; i < cfg.Participants; i++ {
				plans = append(plans, plan{room, fmt.Sprintf("p%d-%d", r, i), true, tracksPer * (cfg.Participants - 1), 0})
			}
		case "lecture":
			if cfg.Viewers < 1 {
				return nil, errors.New("lecture needs at least 1 viewer")
			}
			plans = append(plans, plan{room, fmt.Sprintf("presenter-%d", r), true, 0, 0})
			for i := 0; i < cfg.Viewers; i++ {
				plans = append(plans, plan{room, fmt.Sprintf("v%d-%d", r, i), false, tracksPer, 0})
			}
		default:
			return nil, fmt.Errorf("unknown scenario %q (meeting, lecture, churn)", cfg.Scenario)
		}
	}
	cfg.assignNodes(plans)
	return plans, nil
}

// assignNodes spreads the planned participants over the nodes: by room,
// or in joining order with a lecture's presenters on the first node.
func (cfg *Config) assignNodes(plans []plan) {
	n := max(1, len(cfg.nodes))
	next, room, rooms := 0, "", -1
	for i := range plans {
		pl := &plans[i]
		if pl.room != room {
			room, rooms = pl.room, rooms+1
		}
		switch {
		case cfg.Spread == SpreadRooms:
			pl.node = rooms % n
		case cfg.Scenario == "lecture" && pl.publish:
			pl.node = 0
		default:
			pl.node = next % n
			next++
		}
	}
}
