package loadtest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"
)

// Config describes one load run. Every loop in a run is bounded by
// Duration (plus join and leave time) and stops by itself.
type Config struct {
	URL          string        // server base URL, e.g. http://127.0.0.1:8080
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
	Logger            *slog.Logger
	Progress          io.Writer // a live line while running; nil for none
}

// check fills in defaults and refuses what cannot run.
func (cfg *Config) check() error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rooms <= 0 {
		cfg.Rooms = 1
	}
	if _, err := url.Parse(cfg.URL); err != nil {
		return fmt.Errorf("url: %w", err)
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

// plan is one participant a run brings in.
type plan struct {
	room, name string
	publish    bool
	expect     int // tracks this peer should receive
}

// overHTTP says whether the participant uses WHIP or WHEP rather than the
// signaling WebSocket.
func (cfg *Config) overHTTP(pl plan) bool {
	return (pl.publish && cfg.PresenterProtocol == "whip") || (!pl.publish && cfg.ViewerProtocol == "whep")
}

// plans lists the participants of every room in joining order.
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
				plans = append(plans, plan{room, fmt.Sprintf("p%d-%d", r, i), true, tracksPer * (cfg.Participants - 1)})
			}
		case "lecture":
			if cfg.Viewers < 1 {
				return nil, errors.New("lecture needs at least 1 viewer")
			}
			plans = append(plans, plan{room, fmt.Sprintf("presenter-%d", r), true, 0})
			for i := 0; i < cfg.Viewers; i++ {
				plans = append(plans, plan{room, fmt.Sprintf("v%d-%d", r, i), false, tracksPer})
			}
		default:
			return nil, fmt.Errorf("unknown scenario %q (meeting, lecture, churn)", cfg.Scenario)
		}
	}
	return plans, nil
}
