"""Everything that knows about models: loading, architectures, hook sites, extraction.

Nothing downstream of extraction imports this package (or torch / transformers).
"""
