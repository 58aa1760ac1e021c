"""The check API's implementation: registry, judgements, outcomes, shared predicates."""
