package models

import "github.com/recserve/recserve/dataset"

// InteractionLearner is a model that learns from interactions while it
// serves: popularity counters grow with every event instead of waiting for
// the next training run. The serving core hands every interaction the live
// store applied to each serving version that implements it. It is optional
// because most models read the live history from Query.History and need
// nothing more. Implementations are safe for concurrent use with each other
// and with the model's queries, and cheap: they run on the event ingestion
// path, so a call must cost about O(len(in)), never O(catalogue) per event.
type InteractionLearner interface {
	// LearnInteractions counts in. The next query sees it.
	LearnInteractions(in []dataset.Interaction)
}

// CatalogueLearner is a model that follows catalogue changes while it
// serves: the content model vectorises a new item so it can be recommended
// before the next training run, and forgets a deleted one. It is optional
// because most models know items only through interactions. The same
// concurrency and cost rules as InteractionLearner apply.
type CatalogueLearner interface {
	// LearnItems adds or re-describes the upserted items and forgets the
	// deleted ids. The next query sees the change.
	LearnItems(upserted []dataset.Item, deleted []string)
}
