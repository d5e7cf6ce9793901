package feedredis

// holder is a hub listener that ignores what it is given, standing in for
// a long-poll waiter (which giveUp leaves in its topic) without the reads
// a real Wait makes.
type holder struct{ _ byte } // not zero-size: each is a distinct map key

func (*holder) deliver(*wireMsg) {}
func (*holder) recover()         {}

// Hold keeps topic joined on b's hub until release: ready is closed once
// its (S)SUBSCRIBE is confirmed.
func Hold(b *Broker, topic string) (ready <-chan struct{}, release func(), err error) {
	h := &holder{}
	ready, err = b.hub.join(topic, h)
	if err != nil {
		return nil, nil, err
	}
	return ready, func() { b.hub.leave(topic, h) }, nil
}

// Listeners is how many local listeners (subscriptions, long-poll waiters)
// topic has on b's hub.
func Listeners(b *Broker, topic string) int {
	b.hub.mu.Lock()
	defer b.hub.mu.Unlock()
	for _, t := range b.hub.topics {
		if t.name == topic {
			return len(t.set)
		}
	}
	return 0
}
