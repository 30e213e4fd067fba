package cache

import "time"

// SetStepHook makes b run afterStep after each server-side step of its
// multi-step operations; an error stops the operation there, as a crash
// would. nil removes the hook.
func SetStepHook(b *Backend, afterStep func(op, step string) error) { b.afterStep = afterStep }

// SetSlack sets the slack b adds to sharded memberships' expiry.
func SetSlack(b *Backend, slack time.Duration) { b.slack = slack }
