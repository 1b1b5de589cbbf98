"""The semantic side of both methods: AST tags, the semantic dictionary, AudioSet
prototypes, and CAFMap's representative frames, captions and conditions."""
