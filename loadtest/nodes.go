package loadtest

import (
	"context"
	"slices"
	"sync"
)

// NodeStats is what one node of the run served.
type NodeStats struct {
	URL string `json:"url"`
	// Participants counts the joins tried through it first (churn
	// replacements included), Joined those that got in.
	Participants int `json:"participants"`
	Joined       int `json:"joined"`
	// JoinMillis are the join times of those that joined through it.
	JoinMillis Percentiles `json:"joinMillis"`
	// Packets, Lost and ReceivedKbps are what peers received through it
	// (a peer that rejoined elsewhere counts at each node for its part).
	Packets      uint64  `json:"packets"`
	Lost         uint64  `json:"lost"`
	ReceivedKbps float64 `json:"receivedKbps"`
	// RejoinsFrom counts rejoins of peers that lost this node, RejoinsTo
	// the rejoins that landed on it (Config.Reconnect).
	RejoinsFrom int `json:"rejoinsFrom"`
	RejoinsTo   int `json:"rejoinsTo"`
	// Server is what the node's /metrics said over the run.
	Server ServerStats `json:"server"`
}

// nodeCount is what the run counts per node while it goes.
type nodeCount struct {
	tried, joined int
	joinMillis    []float64
}

// scrapeNodes reads every node's /metrics at once.
func scrapeNodes(ctx context.Context, nodes []string) []ServerStats {
	out := make([]ServerStats, len(nodes))
	var wg sync.WaitGroup
	for i, u := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = scrapeServer(ctx, u)
		}()
	}
	wg.Wait()
	return out
}

// sumServers adds up the figures of the nodes that answered; it is not
// Available when none did. (Nodes in one process, as in tests, report the
// same process: their sum counts it once per node.)
func sumServers(nodes []ServerStats) ServerStats {
	var sum ServerStats
	for _, s := range nodes {
		if !s.Available {
			continue
		}
		sum.Available = true
		sum.CPUSeconds += s.CPUSeconds
		sum.RSSBytes += s.RSSBytes
		sum.Goroutines += s.Goroutines
		sum.PacketsOut += s.PacketsOut
		sum.PacketsIn += s.PacketsIn
		sum.BytesOut += s.BytesOut
		sum.Relay = sum.Relay.plus(s.Relay)
		sum.Seconds = max(sum.Seconds, s.Seconds)
		sum.RSSGrowth += s.RSSGrowth
		sum.PLIsSent += s.PLIsSent
		sum.PLIsReceived += s.PLIsReceived
	}
	if sum.PacketsOut > 0 {
		sum.CPUPer1000 = sum.CPUSeconds / sum.PacketsOut * 1000
	}
	if sum.CPUSeconds > 0 {
		sum.PacketsPerCPUSecond = sum.PacketsOut / sum.CPUSeconds
	}
	return sum
}

// serversSince turns two scrapes of every node into each node's figures
// over the run and their sum.
func serversSince(after, before []ServerStats) (sum ServerStats, perNode []ServerStats) {
	perNode = make([]ServerStats, len(after))
	for i := range after {
		perNode[i] = after[i].since(before[i])
	}
	return sumServers(perNode), perNode
}

// addNodes fills in the per-node figures and the rejoins of the run.
func (rep *Report) addNodes(nodes []string, counts []nodeCount, logs []*receiveLog, servers []ServerStats) {
	recv := make([]nodeRecv, len(nodes))
	rep.Nodes = make([]NodeStats, len(nodes))
	for i, u := range nodes {
		rep.Nodes[i] = NodeStats{URL: u, Participants: counts[i].tried, Joined: counts[i].joined,
			JoinMillis: percentiles(counts[i].joinMillis), Server: servers[i]}
	}
	var rejoin, resume []float64
	for _, l := range logs {
		l.addPerNode(recv)
		recs := l.reconnections()
		for _, rc := range recs {
			rejoin = append(rejoin, float64(rc.Rejoined.Sub(rc.Lost).Microseconds())/1000)
			if i := slices.Index(nodes, rc.From); i >= 0 {
				rep.Nodes[i].RejoinsFrom++
			}
			if i := slices.Index(nodes, rc.URL); i >= 0 {
				rep.Nodes[i].RejoinsTo++
			}
		}
		resume = append(resume, l.resumed(recs)...)
	}
	for i := range rep.Nodes {
		rep.Nodes[i].Packets, rep.Nodes[i].Lost = recv[i].packets, recv[i].lost
		if rep.Duration > 0 {
			rep.Nodes[i].ReceivedKbps = float64(recv[i].bytes) * 8 / 1000 / rep.Duration
		}
	}
	rep.Reconnects = len(rejoin)
	rep.ReconnectMillis = percentiles(rejoin)
	rep.ResumeMillis = percentiles(resume)
}
