"""The tier implementations, one per kind in cascade.tier_kinds (the classifier's torch side apart,
in classifier_torch), each importing its model library only when built."""
