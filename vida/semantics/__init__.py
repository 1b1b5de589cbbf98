"""AudioSet labels, tags, the semantic dictionary, the IoU filter, captions, prototypes."""
