"""Markup → plain prose (pure functions, strings in, strings out; stdlib html.parser only).

    >>> from analysis.corpus.text import sphinx_html_to_text, osis_chapters
    >>> sphinx_html_to_text('<div role="main"><h1>Title<a class="headerlink">¶</a></h1><p>Some  prose.</p>'
    ...                     '<pre>code()</pre></div><div class="footer">nav</div>')
    'Title\\n\\nSome prose.'
    >>> osis_chapters('<chapter osisID="Gen.1" sID="Gen.1"/>In the <w lemma="x">beginning</w>'
    ...               '<note>a footnote</note> God. \\u00b6 And<chapter eID="Gen.1"/>')
    [('Gen.1', 'In the beginning God.\\n\\nAnd')]

Sphinx pages (python3.11-doc): only the text inside `<div role="main">` is kept; navigation, scripts,
styles, code blocks (`<pre>`), header permalinks (¶) are dropped so that what remains is prose.
OSIS (the SWORD KJV module): Strong's-number markup is unwrapped, footnotes (`<note>`) dropped, and the
text is cut at chapter milestones.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose whole subtree is not prose.
SKIP_TAGS = {"script", "style", "nav", "pre", "head", "title", "noscript", "form", "button", "select"}
SKIP_CLASSES = {"headerlink", "related", "sphinxsidebar", "footer", "copybutton"}
# Elements that end a paragraph (text on either side must not run together).
BLOCK_TAGS = {"p", "div", "section", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
              "table", "tr", "td", "th", "blockquote", "br", "hr", "figure", "figcaption", "caption"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

_WS = re.compile(r"\s+")


def normalize_paragraphs(paragraphs: list[str]) -> str:
    """Collapse runs of whitespace inside each paragraph; join non-empty paragraphs with a blank line."""
    out = [_WS.sub(" ", p).strip() for p in paragraphs]
    return "\n\n".join(p for p in out if p)


class _SphinxText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, bool]] = []   # (tag, opens main, opens a skipped subtree)
        self.main_depth = 0
        self.skip_depth = 0
        self.paragraphs: list[str] = [""]

    def _break(self) -> None:
        if self.paragraphs[-1]:
            self.paragraphs.append("")

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        if tag in BLOCK_TAGS:
            self._break()
        if tag in VOID_TAGS:
            return
        opens_main = a.get("role") == "main"
        skip = tag in SKIP_TAGS or bool(classes & SKIP_CLASSES)
        self.stack.append((tag, opens_main, skip))
        self.main_depth += opens_main
        self.skip_depth += skip

    def handle_startendtag(self, tag, attrs):
        if tag in BLOCK_TAGS:
            self._break()

    def handle_endtag(self, tag):
        if tag in BLOCK_TAGS:
            self._break()
        if tag in VOID_TAGS or not any(t == tag for t, _, _ in self.stack):
            return  # stray end tag: ignore rather than unbalance the stack
        while self.stack:  # pop up to the matching start tag (closes unclosed children, e.g. <p>)
            t, m, s = self.stack.pop()
            self.main_depth -= m
            self.skip_depth -= s
            if t == tag:
                break

    def handle_data(self, data):
        if self.main_depth > 0 and self.skip_depth == 0:
            self.paragraphs[-1] += data


def sphinx_html_to_text(html: str) -> str:
    """Prose of one Sphinx HTML page: the `role="main"` body without code, navigation or permalinks."""
    parser = _SphinxText()
    parser.feed(html)
    parser.close()
    return normalize_paragraphs(parser.paragraphs)


class _OsisText(HTMLParser):
    """Splits OSIS text at `<chapter sID=.../>` milestones; drops `<note>` subtrees."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chapters: list[tuple[str, list[str]]] = []
        self.current: list[str] | None = None
        self.note_depth = 0

    def _milestone(self, tag, attrs):
        a = dict(attrs)
        if tag == "chapter" and a.get("sid"):
            self.current = [""]
            self.chapters.append((a.get("osisid") or a["sid"], self.current))
        elif tag == "chapter" and a.get("eid"):
            self.current = None
        elif tag in ("div", "lg", "l", "p") and self.current is not None and self.current[-1]:
            self.current.append("")  # paragraph / poetry-line milestones

    def handle_starttag(self, tag, attrs):
        if tag == "note":
            self.note_depth += 1
        else:
            self._milestone(tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self._milestone(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "note":
            self.note_depth = max(0, self.note_depth - 1)

    def handle_data(self, data):
        if self.current is not None and self.note_depth == 0:
            # The pilcrow is the edition's paragraph mark, not prose: make it a paragraph break.
            *before, last = data.split("\u00b6")
            for part in before:
                self.current[-1] += part
                self.current.append("")
            self.current[-1] += last


def osis_chapters(osis: str) -> list[tuple[str, str]]:
    """[(osisID, plain text)] for each chapter of an OSIS fragment, in document order."""
    parser = _OsisText()
    parser.feed(osis)
    parser.close()
    return [(cid, normalize_paragraphs(paras)) for cid, paras in parser.chapters]
