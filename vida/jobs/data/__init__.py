"""Media and features into the store and the catalog: ingest, encode, the legacy
import, splits, and what the catalog commands ask."""
