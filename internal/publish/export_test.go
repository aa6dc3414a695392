package publish

// SetTestHookAccepted makes the batching loop call f with each entry's
// event id as it takes the entry. Call it before the first Publish.
func (p *Publisher) SetTestHookAccepted(f func(eventID string)) { p.testHookAccepted = f }
