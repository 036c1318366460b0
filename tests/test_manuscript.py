"""The Quarto manuscript against the pipeline's generated assets (no Quarto needed), plus a render test.

    pytest tests/test_manuscript.py                 # the render test is skipped when `quarto` is not on PATH

Checks: every `{{< meta >}}` key, `{{< include >}}` file and figure referenced by either document exists in the
assets the stage writes for BOTH synthetic configurations (one trained model + control; two trained models +
control); both languages reference the same keys (modulo the _en/_vi suffix), figures, tables, cross-reference
ids and claims; the prose contains no hand-typed number; the Vietnamese document sets its language labels.

Digits allowed in the prose (documented whitelist): the claim ids C1…C8. Not scanned: YAML front matter,
HTML comments, code, shortcodes, math ($…$), image/link targets, attribute blocks {…}, citation and
cross-reference keys (@…), and fenced div markers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "report"
DOCS = {"en": REPORT / "paper-en.qmd", "vi": REPORT / "paper-vi.qmd"}
CLAIM_ID = re.compile(r"\bC[1-8]\b")
LANG_SUFFIX = re.compile(r"_(en|vi)$")


def split_front_matter(text: str) -> tuple[dict, str]:
    m = re.match(r"^---\n(.*?)\n---\n", text, flags=re.S)
    assert m, "document has no YAML front matter"
    return yaml.safe_load(m.group(1)), text[m.end():]


def refs(text: str) -> dict[str, set[str]]:
    _, body = split_front_matter(text)
    return {
        "meta": set(re.findall(r"\{\{<\s*meta\s+([^\s>]+)\s*>\}\}", body)),
        "include": set(re.findall(r"\{\{<\s*include\s+([^\s>]+)\s*>\}\}", body)),
        "figure": set(re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", body, flags=re.S)),
        "ids": set(re.findall(r"#((?:fig|tbl)-[\w-]+)", body)),
        "xrefs": set(re.findall(r"@((?:fig|tbl)-[\w-]+)", body)),
        "cites": set(re.findall(r"@([a-z]+\d{4}[a-z]*)", body)),
        "claims": set(CLAIM_ID.findall(body)),
    }


def prose_only(text: str) -> str:
    _, body = split_front_matter(text)
    for pat in (r"<!--.*?-->", r"```.*?```", r"\{\{<.*?>\}\}", r"\$\$.*?\$\$", r"\$[^$\n]+\$", r"`[^`\n]*`",
                r"\]\([^)]*\)", r"\{[#.][^}]*\}", r"\{[^}\n]*=[^}\n]*\}", r"@[\w:.-]+", r"^:::.*$"):
        body = re.sub(pat, " ", body, flags=re.S | re.M)
    return CLAIM_ID.sub(" ", body)


def lookup(meta: dict, dotted: str):
    node = meta
    for k in dotted.split("."):
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return node


@pytest.fixture(scope="module")
def docs() -> dict[str, str]:
    return {lang: p.read_text(encoding="utf-8") for lang, p in DOCS.items()}


def test_documents_exist_and_are_in_the_render_list():
    cfg = yaml.safe_load((ROOT / "_quarto.yml").read_text(encoding="utf-8"))
    assert cfg["project"]["render"] == ["report/paper-en.qmd", "report/paper-vi.qmd"]
    assert "report/_generated/metadata.yml" in cfg["metadata-files"]
    # render-time provenance: written by the pre-render command into the file Quarto reads afterwards
    assert "report/_provenance.yml" in cfg["metadata-files"]
    assert "analysis/provenance.py --write report/_provenance.yml" in cfg["project"]["pre-render"]
    assert {"html", "typst"} <= set(cfg["format"])
    assert cfg.get("execute", {}).get("enabled") is False
    assert (REPORT / "references.bib").exists()


def test_every_reference_resolves_in_both_configurations(docs, assets_any):
    from analysis.provenance import quarto_metadata, render_provenance

    # `checkout.*` keys come from the pre-render provenance file (_quarto.yml), the rest from the assets stage:
    # exactly the names Quarto will see (the two metadata files merged at the top level).
    gen = assets_any["gen"]
    meta = {**assets_any["meta"], **quarto_metadata(render_provenance(ROOT))}
    for lang, text in docs.items():
        r = refs(text)
        for key in sorted(r["meta"]):
            v = lookup(meta, key)
            assert isinstance(v, str) and v.strip(), f"{lang}: meta key {key!r} missing or empty"
        base = gen.parent  # documents live in report/, assets in report/_generated/
        for inc in r["include"]:
            assert (base / inc).exists(), f"{lang}: include {inc} not generated"
        for fig in r["figure"]:
            assert (base / fig).exists(), f"{lang}: figure {fig} not generated"
        assert r["xrefs"] <= r["ids"], f"{lang}: cross-references without a target: {r['xrefs'] - r['ids']}"
        assert r["ids"] <= r["xrefs"], f"{lang}: figures/tables never referenced: {r['ids'] - r['xrefs']}"


def test_languages_reference_the_same_things(docs):
    en, vi = refs(docs["en"]), refs(docs["vi"])
    norm = lambda keys: {LANG_SUFFIX.sub("", k) for k in keys}  # noqa: E731
    assert norm(en["meta"]) == norm(vi["meta"]), norm(en["meta"]) ^ norm(vi["meta"])
    assert {Path(f).name for f in en["figure"]} == {Path(f).name for f in vi["figure"]}
    assert {Path(f).name for f in en["include"]} == {Path(f).name for f in vi["include"]}
    assert en["ids"] == vi["ids"] and en["xrefs"] == vi["xrefs"] and en["cites"] == vi["cites"]
    assert en["claims"] == vi["claims"]
    # each language reads its own variants and its own figure/table folder
    for lang, r in (("en", en), ("vi", vi)):
        other = "vi" if lang == "en" else "en"
        assert not any(k.endswith(f"_{other}") for k in r["meta"]), f"{lang} reads {other} keys"
        assert all(f"/{lang}/" in f for f in r["figure"] | r["include"])


def test_no_number_is_typed_by_hand(docs):
    for lang, text in docs.items():
        prose = prose_only(text)
        hits = [m.group(0) for m in re.finditer(r"\S*\d\S*", prose)]
        assert not hits, f"{lang}: hand-typed numbers in the prose: {hits[:10]}"


def test_digit_scan_catches_numbers():
    text = "---\ntitle: x\n---\nThe median is 4 and {{< meta m.primary.c1.len_median >}} C3 @fig-x $n-1$.\n"
    assert re.findall(r"\d", prose_only(text)) == ["4"]


def test_citations_exist(docs):
    bib = (REPORT / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    for lang, text in docs.items():
        assert refs(text)["cites"] <= keys, f"{lang}: unknown citations {refs(text)['cites'] - keys}"


def test_vietnamese_labels(docs):
    fm, body = split_front_matter(docs["vi"])
    assert fm["lang"] == "vi"
    lab = fm["language"]
    assert lab["crossref-fig-title"] == "Hình" and lab["crossref-tbl-title"] == "Bảng"
    assert lab["toc-title-document"] == "Mục lục" and lab["section-title-abstract"] == "Tóm tắt"
    assert "## Tóm tắt" in body and "## Tài liệu tham khảo" in body
    assert split_front_matter(docs["en"])[0]["lang"] == "en"


def test_metadata_is_flat_strings_and_has_both_languages(assets_any):
    meta = assets_any["meta"]

    def leaves(node, path=""):
        for k, v in node.items():
            p = f"{path}.{k}" if path else k
            if isinstance(v, dict):
                yield from leaves(v, p)
            else:
                yield p, v
    items = dict(leaves(meta))
    assert all(isinstance(v, str) for v in items.values()), [k for k, v in items.items() if not isinstance(v, str)]
    for k in items:
        if k.endswith("_en"):
            assert k[:-3] + "_vi" in items, f"{k} has no Vietnamese variant"
    # model keys: one block per model plus the role aliases; no dots inside a model key
    names = set(assets_any["params"]["config"]["models"])
    assert names | {"primary"} <= set(meta["m"])
    assert all("." not in n for n in meta["m"])


def test_generated_sentences_follow_the_configuration(assets_offline, assets_paper):
    off, pap = assets_offline["meta"]["say"], assets_paper["meta"]["say"]
    assert "single trained model" in off["scale_en"] and "chỉ có một" in off["scale_vi"]
    assert "different size" in pap["scale_en"] and "GPT-Neo 1.3B" in pap["scale_en"]
    assert "random weights" in off["control_en"] and "ngẫu nhiên" in off["control_vi"]


def test_verdict_matrix_lists_every_claim_and_model(assets_any):
    models = assets_any["params"]["config"]["models"]
    for lang in ("en", "vi"):
        table = (assets_any["gen"] / "tables" / lang / "verdicts.md").read_text(encoding="utf-8")
        lines = table.strip().splitlines()
        assert len(lines) == 2 + 8 and all(f"| C{i} |" in table for i in range(1, 9))
        assert all(line.count("|") == 3 + len(models) for line in lines)  # claim, statement, one column per model
    vi = (assets_any["gen"] / "tables" / "vi" / "verdicts.md").read_text(encoding="utf-8")
    assert "được ủng hộ" in vi or "không được ủng hộ" in vi


def test_claims_detail_reads_as_values_not_dumps(assets_any):
    for lang in ("en", "vi"):
        table = (assets_any["gen"] / "tables" / lang / "claims.md").read_text(encoding="utf-8")
        assert "=" not in table and "{" not in table and ";" not in table  # no `key = value; ...` dumps
        assert "≤" in table or "≥" in table   # every component shows the chance bound it had to pass


# Top-level option names of Quarto documents and projects (https://quarto.org/docs/reference/: projects,
# formats html and typst, crossref, citations, metadata): a metadata file must not use any of them for its
# own data, or Quarto reads it as an option (a `render:` block never reaches the `meta` shortcode).
QUARTO_RESERVED = set("""
render format execute project lang language title subtitle date date-format date-modified author authors
abstract abstract-title doi order brand theme css toc toc-depth toc-title toc-location toc-expand number-sections
number-depth number-offset shift-heading-level-by bibliography csl citation citeproc cite-method crossref
filters metadata-files metadata params engine jupyter knitr editor keep-md keep-typ keep-ipynb output-file
output-ext output-dir papersize margin fontsize mainfont sansfont monofont font-paths columns section-numbering
page-numbering template template-partials link-citations link-bibliography reference-location notes
appendix-style license copyright funding keywords subject description category categories image comments
resources website book manuscript profile pdf-engine pdf-engine-opt header-includes include-in-header
include-before-body include-after-body quarto-required variables vars listing search sidebar navbar freeze
cache echo eval warning error include output code-fold code-tools mermaid lightbox grid page-layout
title-block-style title-block-banner anchor-sections smooth-scroll tabsets html-math-method self-contained
embed-resources standalone institute affiliation affiliations other-links code-links google-scholar draft
format-links from to writer reader wrap dpi fig-width fig-height fig-format fig-dpi fig-align fig-cap-location
tbl-cap-location tbl-colwidths df-print toc-title-document lot lof number citations-hover footnotes-hover
""".split())


def test_no_generated_top_level_key_is_a_quarto_option(assets_any):
    from analysis.provenance import quarto_metadata, render_provenance

    prov = quarto_metadata(render_provenance(ROOT))
    assert set(assets_any["meta"]) & QUARTO_RESERVED == set(), set(assets_any["meta"]) & QUARTO_RESERVED
    assert set(prov) - {"date"} & QUARTO_RESERVED == set()
    assert "render" in QUARTO_RESERVED and "params" in QUARTO_RESERVED  # the list holds the names that bit us


def test_paper_date_is_the_commit_date_not_today(docs):
    import subprocess as sp_

    from analysis.provenance import quarto_metadata, render_provenance

    for lang, text in docs.items():
        fm, _ = split_front_matter(text)
        assert "date" not in fm, f"{lang}: the date must come from the data version (report/_provenance.yml)"
    date = quarto_metadata(render_provenance(ROOT)).get("date")
    commit_date = sp_.run(["git", "show", "-s", "--format=%cI", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()[:10]
    assert date == commit_date and re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)


def test_one_references_heading_per_format(docs):
    """Typst writes its own bibliography heading: ours is shown in HTML only."""
    for lang, text in docs.items():
        _, body = split_front_matter(text)
        heads = re.findall(r"^## (?:References|Tài liệu tham khảo).*$", body, flags=re.M)
        assert len(heads) == 1
        block = re.search(r'::: \{\.content-visible when-format="html"\}\n## (References|Tài liệu tham khảo)', body)
        assert block, f"{lang}: the references heading must be inside an HTML-only block"


def test_html_links_to_the_pdf_by_name(docs):
    for lang, text in docs.items():
        fm, body = split_front_matter(text)
        assert fm["format"]["html"]["format-links"] is False   # no automatic "Typst" link
        assert f"](paper-{lang}.pdf)" in body and "PDF" in body


def test_table_cells_fit_a_printed_page(assets_any):
    from analysis.manuscript.tables import MAX_CELL

    for lang in ("en", "vi"):
        for path in sorted((assets_any["gen"] / "tables" / lang).glob("*.md")):
            for line in path.read_text(encoding="utf-8").splitlines():
                cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
                for c in cells:
                    assert len(c) <= MAX_CELL, f"{path.name}: cell of {len(c)} characters: {c!r}"


def test_per_block_table_names_each_model_once_and_fits_the_page(assets_any):
    """The long per-block table: at most 11 columns (equal widths on A4 at the tables' 8.5 pt), each model
    named once in a row of its own rather than in a column repeated on every row."""
    for lang in ("en", "vi"):
        lines = (assets_any["gen"] / "tables" / lang / "blocks.md").read_text(encoding="utf-8").splitlines()
        rows = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines]
        assert all(len(r) <= 11 for r in rows), max(len(r) for r in rows)
        named = [r[0] for r in rows[2:] if r[0].startswith("**")]
        assert len(named) == len(set(named)) >= 1
        assert all(all(not c for c in r[1:]) for r in rows[2:] if r[0].startswith("**"))


def test_typst_tables_break_across_pages_and_are_not_justified():
    cfg = yaml.safe_load((ROOT / "_quarto.yml").read_text(encoding="utf-8"))
    header = cfg["format"]["typst"]["include-in-header"]["text"]
    assert "set par(justify: false)" in header and "breakable: true" in header
    assert "set text(size:" in header      # tables a little smaller than the text


@pytest.mark.quarto
@pytest.mark.slow
def test_quarto_renders_both_languages(assets_offline, tmp_path):
    """`quarto render report/` on a copy of the project with synthetic assets: HTML + PDF in both languages."""
    if shutil.which("quarto") is None:
        pytest.skip("quarto is not on PATH (install Quarto >= 1.4 from https://quarto.org to run this test)")
    proj = tmp_path / "proj"
    (proj / "report").mkdir(parents=True)
    shutil.copy(ROOT / "_quarto.yml", proj / "_quarto.yml")
    for f in ("paper-en.qmd", "paper-vi.qmd", "references.bib"):
        shutil.copy(REPORT / f, proj / "report" / f)
    shutil.copytree(assets_offline["gen"], proj / "report" / "_generated")
    (proj / "analysis").mkdir()
    shutil.copy(ROOT / "analysis" / "provenance.py", proj / "analysis" / "provenance.py")  # the pre-render script
    res = subprocess.run(["quarto", "render", "report/"], cwd=proj, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = proj / "_output"
    for lang in ("en", "vi"):
        html = list(out.rglob(f"paper-{lang}.html"))
        pdf = list(out.rglob(f"paper-{lang}.pdf"))
        assert html and pdf, f"{lang}: outputs missing under {out}: {sorted(p.name for p in out.rglob('*'))}"
        page = html[0].read_text(encoding="utf-8")
        assert "split_histograms.svg" in page and "r_heatmap.svg" in page
        assert 'id="tbl-verdicts"' in page and "C8" in page
        assert "?meta:" not in page, "an unresolved meta key was rendered"
        assert pdf[0].stat().st_size > 20_000
    assert "Hình" in list(out.rglob("paper-vi.html"))[0].read_text(encoding="utf-8")
    first = {p.name: p.read_bytes() for p in out.rglob("*.html")}
    res = subprocess.run(["quarto", "render", "report/"], cwd=proj, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0
    assert {p.name: p.read_bytes() for p in out.rglob("*.html")} == first, "a second render changed the HTML"


def test_reference_corpus_is_described_in_words_not_as_a_dict(assets_any):
    corpus = assets_any["meta"]["corpus"]
    for lang in ("en", "vi"):
        text = corpus[f"reference_{lang}"]
        assert "{" not in text and "debian-docs" in text
        assert "1500" in re.sub(r"[^\d]", "", text)  # the document count, whatever thousands separator
