package sink

// Extender decides whether a group commit that already holds every request in flight may wait
// for new arrivals. Closed-loop senders (each sends again only once answered) bring none while
// their requests wait, so an extension that gained nothing turns extending off for ExtendBackoff
// commits: such senders pay one wait in that many. One committer uses it (not safe for
// concurrent use); the zero value is ready.
type Extender struct {
	skip  int
	tries int
}

// ExtendBackoff is how many commits go unextended after an extension gained nothing.
const ExtendBackoff = 32

// Try reports whether this commit may extend, counting the back-off down otherwise.
func (x *Extender) Try() bool {
	if x.skip > 0 {
		x.skip--
		return false
	}
	x.tries++
	return true
}

// Done records whether the extension Try allowed gathered anything.
func (x *Extender) Done(gained bool) {
	if !gained {
		x.skip = ExtendBackoff
	}
}

// Tries is how many extensions Try allowed.
func (x *Extender) Tries() int { return x.tries }
