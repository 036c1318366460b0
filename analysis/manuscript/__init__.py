"""The manuscript layer: every number, sentence and table the Quarto documents read (strings out).

    >>> from analysis.manuscript.metadata import build_metadata      # report/_generated/metadata.yml
    >>> from analysis.manuscript.tables import write_tables          # report/_generated/tables/<lang>/*.md
    >>> from analysis.manuscript.format import fr, fpct               # how numbers print

Modules: format (numbers, pipe tables), sentences (verdict-dependent sentences, en/vi), metadata (the
metadata tree), tables (the tables). Figures are analysis/figures; the stage is analysis/stages/assets.py.
"""
