package fanout

import "time"

// OnGrant makes l report each request's turn as its bucket grants it:
// the time the request may go, before the scheduler (which may wake the
// waiting goroutine late) has a say.
func OnGrant(l *Limiter, f func(at time.Time)) { l.onGrant = f }
