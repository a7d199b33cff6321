package client

import "github.com/confab-sfu/confab/signal"

// Events delivers room events in order: participant_joined / left,
// track_published / unpublished / updated, chat, active_speaker, layers,
// bye and errors without a request id; with Reconnect also
// TypeReconnecting, TypeReconnected and TypeEnded. It is closed when the
// peer is done.
func (p *Peer) Events() <-chan *signal.Message { return p.eventsOut }

// pushEvent queues a room event for Events without blocking the loop.
func (p *Peer) pushEvent(m *signal.Message) {
	p.mu.Lock()
	p.events = append(p.events, m)
	p.mu.Unlock()
	select {
	case p.eventWake <- struct{}{}:
	default:
	}
}

// deliverEvents hands queued events to the reader of Events; the queue is
// unbounded so a slow reader never stalls negotiation. Leave drops what is
// still queued; a peer that ended by itself first delivers everything, so
// that its reader learns why.
func (p *Peer) deliverEvents() {
	defer p.wg.Done()
	defer close(p.eventsOut)
	for {
		p.mu.Lock()
		var m *signal.Message
		if len(p.events) > 0 {
			m = p.events[0]
			p.events[0] = nil
			p.events = p.events[1:]
		}
		p.mu.Unlock()
		if m == nil {
			select {
			case <-p.eventWake:
				continue
			case <-p.leaving:
				return
			case <-p.ctx.Done():
				// Ended: anything pushed before the end is queued by now.
				p.mu.Lock()
				empty := len(p.events) == 0
				p.mu.Unlock()
				if empty {
					return
				}
				continue
			}
		}
		select {
		case p.eventsOut <- m:
		case <-p.leaving:
			return
		}
	}
}
