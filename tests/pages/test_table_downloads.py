"""CSV downloads of the tables on the Attribution, Patching and Ablation pages: each button is there,
its file is named after the prompt, and its text is the table (read back with a csv reader)."""
from __future__ import annotations

import csv
import io

import pytest


def table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def buttons(at) -> dict[str, str]:
    return {b.key: b.proto.label for b in at.get("download_button")}


def test_attribution_tables_download(open_page, files):
    at = open_page("pages/attribution.py")
    assert not at.exception
    assert {"attr_shares_csv", "attr_parts_csv", "attr_heads_csv"} <= set(buttons(at))
    prompt = "the-capital-of-france-is"
    shares = table(files[f"attribution_shares_pos4_{prompt}.csv"])
    assert [r["part"] for r in shares][-1] == "model's own logit"
    assert len(shares) == len(at.dataframe[0].value)
    parts = table(files[f"attribution_parts_pos4_{prompt}.csv"])
    assert len(parts) == 1 + 2 * 30 and parts[0]["part"] == at.dataframe[1].value["part"].iloc[0]
    heads = table(files[f"attribution_heads_pos4_{prompt}.csv"])
    assert len(heads) == 30 * 9 and heads[0]["block"] == "block 0" and heads[-1]["head"] == "head 8"
    top = at.dataframe[2].value.iloc[0]
    row = next(r for r in heads if int(r["block index"]) == top["block"] and int(r["head index"]) == top["head"])
    assert float(row["share"]) == pytest.approx(top["share"], abs=1e-4)


def test_patching_grid_and_top_cells_download(open_page, files):
    at = open_page("pages/patching.py")
    prompt = "when-mary-and-john-went-to-the-store-joh"  # 40 characters
    estimate = table(files[f"patching_residual_{prompt}.csv"])  # before the exact run: the estimate alone
    assert len(estimate) == 31 * 14 and set(estimate[0]) == {"layer index", "layer", "position index", "position",
                                                            "estimate", "patched"}
    assert estimate[9]["position"] == "·John/·Mary (9)" and estimate[0]["layer"] == "embedding"
    at.radio(key="patch_view").set_value("Attention heads").run()
    at.button(key="patch_run").click().run()
    assert not at.exception
    assert {"patch_grid_csv", "patch_top_csv"} <= set(buttons(at))
    grid = table(files[f"patching_heads_{prompt}.csv"])
    assert len(grid) == 30 * 9 and grid[-1]["head"] == "head 8" and grid[-1]["layer"] == "block 29"
    top = table(files[f"patching_top_heads_{prompt}.csv"])
    shown = at.dataframe[0].value
    assert len(top) == len(shown) == 8 and top[0]["where"] == shown["where"].iloc[0]
    cell = grid[int(top[0]["row index"]) * 9 + int(top[0]["column index"])]
    assert float(cell["exact"]) == pytest.approx(float(top[0]["exact"])) == pytest.approx(shown["exact"].iloc[0])


def test_ablation_table_downloads(open_page, files):
    at = open_page("pages/ablation.py")
    at.multiselect(key="abl_heads").set_value([(3, 0), (3, 1)]).run()  # not another test's (cached) heads
    assert not at.exception and "abl_changes_csv" in buttons(at)
    changes = table(files["ablation_changes_pos4_the-capital-of-france-is.csv"])
    shown = at.dataframe[0].value
    assert [r["token"] for r in changes] == list(shown["token"])
    assert float(changes[0]["change"]) == pytest.approx(shown["change"].iloc[0])
    at.selectbox(key="abl_scan_layer").set_value(3)
    at.button(key="abl_scan").click().run()
    scan = table(files["ablation_scan_L3_pos4_the-capital-of-france-is.csv"])
    assert [r["head"] for r in scan] == [f"L3 H{h}" for h in range(9)]
    assert float(scan[0]["KL (bits)"]) == pytest.approx(at.dataframe[1].value["KL (bits)"].iloc[0])
