"""Hosts CSV imports: every row checked, every problem named by line and column, hostile cells refused."""

from __future__ import annotations

import pytest

from patchday.connectors.imports.hosts_csv import HostAttributes, parse_hosts_csv, spreadsheet_safe
from patchday.core.errors import InvalidImport

GOOD = (
    "name,criticality,exposure,environment,owner,tags,groups\n"
    "web1.lab.example,mission-critical,internet-facing,production,ops@example.com,web;pci;web,DMZ;Linux servers\n"
    "db1,2,internal,production,dba team,,\n"
    "build-7,LOW,Isolated,ci,,ci,\n"
)


def test_a_good_file_gives_one_row_per_host() -> None:
    parsed = parse_hosts_csv(GOOD.encode())
    assert parsed.is_valid
    parsed.raise_if_invalid()
    assert parsed.columns == ("name", "criticality", "exposure", "environment", "owner", "tags", "groups")
    assert parsed.rows[0] == HostAttributes(
        line=2,
        name="web1.lab.example",
        criticality=1,
        exposure="internet-facing",
        environment="production",
        owner="ops@example.com",
        tags=("pci", "web"),
        groups=("DMZ", "Linux servers"),
    )
    assert (parsed.rows[1].criticality, parsed.rows[1].tags, parsed.rows[1].groups) == (2, (), ())
    assert (parsed.rows[2].criticality, parsed.rows[2].exposure, parsed.rows[2].owner) == (4, "isolated", "")


def test_absent_columns_leave_attributes_alone() -> None:
    parsed = parse_hosts_csv(b"name,owner\nweb1,alice\n")
    row = parsed.rows[0]
    assert (row.owner, row.criticality, row.exposure, row.tags, row.groups) == ("alice", None, None, None, None)


def test_bom_crlf_and_quoted_cells() -> None:
    data = '\ufeffName , Tags, Owner\r\n"web1","a;b",x\r\n\r\n"db1",c,"Ops, the first"\r\n'.encode()
    parsed = parse_hosts_csv(data)
    assert parsed.is_valid
    assert [(r.line, r.name, r.tags, r.owner) for r in parsed.rows] == [
        (2, "web1", ("a", "b"), "x"),
        (4, "db1", ("c",), "Ops, the first"),
    ]


def test_every_problem_is_named_by_line_and_column_and_nothing_is_half_valid() -> None:
    data = (
        b"name,criticality,exposure,tags,owner\n"
        b"web1,9,outer space,ok,alice\n"
        b'web2,1,internal,bad tag!,=HYPERLINK("http://evil")\n'
        b",1,internal,,\n"
        b"WEB1,1,internal,,\n"
        b"web3,1\n"
        b"web4,3,internal,,bob\n"
    )
    parsed = parse_hosts_csv(data, source="hosts.csv")
    assert not parsed.is_valid
    assert [(p.line, p.column) for p in parsed.problems] == [
        (2, "criticality"),
        (2, "exposure"),
        (3, "owner"),
        (3, "tags"),
        (4, "name"),
        (6, "*"),
    ]
    assert "already on line" not in str(parsed.problems)  # web1's row was refused, so WEB1 is no duplicate
    assert [r.name for r in parsed.rows] == ["WEB1", "web4"]  # what a preview shows as fine
    with pytest.raises(InvalidImport) as caught:
        parsed.raise_if_invalid("hosts.csv")
    assert (caught.value.line, caught.value.field) == (2, "criticality")
    assert len(caught.value.problems) == 6
    assert str(caught.value).startswith("hosts.csv, line 2: column criticality:")


def test_duplicate_host_names_are_an_error_naming_the_first_line() -> None:
    parsed = parse_hosts_csv(b"name\nweb1\nweb2\nWeb1\n")
    assert [(p.line, p.column, p.message) for p in parsed.problems] == [(4, "name", "host 'Web1' is already on line 2")]


@pytest.mark.parametrize("cell", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", " =1+1"])
def test_formula_cells_are_refused(cell: str) -> None:
    parsed = parse_hosts_csv(f'name,owner\nweb1,"{cell}"\n'.encode())
    assert [(p.column, "formula" in p.message) for p in parsed.problems] == [("owner", True)]


def test_spreadsheet_safe_neutralises_formulas_on_export() -> None:
    assert spreadsheet_safe("=1+1") == "'=1+1"
    assert spreadsheet_safe("@x") == "'@x"
    assert spreadsheet_safe("web1") == "web1"


def test_hostile_text_that_is_not_a_formula_is_kept_as_data() -> None:
    parsed = parse_hosts_csv(b'name,owner\nweb1,"<script>alert(1)</script> $(rm -rf /); ../../etc"\n')
    assert parsed.is_valid
    assert (parsed.rows[0].name, parsed.rows[0].owner) == ("web1", "<script>alert(1)</script> $(rm -rf /); ../../etc")


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "db, the first", "../../etc", "a/b", "-oProxyCommand=x"])
def test_a_name_that_is_not_a_host_name_is_refused(name: str) -> None:
    parsed = parse_hosts_csv(f'name\n"{name}"\n'.encode())
    assert [(p.line, p.column) for p in parsed.problems] == [(2, "name")]


def test_control_characters_and_long_fields_are_refused() -> None:
    parsed = parse_hosts_csv(b'name,owner\n"web\x001",x\n"web2","' + b"o" * 256 + b'"\n"web3\nx",y\n')
    assert [(p.line, p.column) for p in parsed.problems] == [(2, "name"), (3, "owner"), (4, "name")]
    assert "longer than 255" in parsed.problems[1].message


def test_invalid_utf8_names_the_line_and_byte() -> None:
    with pytest.raises(InvalidImport, match=r"byte 19 \(0xe9\) is not valid UTF-8") as caught:
        parse_hosts_csv(b"name,owner\nweb1,Ren\xe9\n", source="latin1.csv")
    assert caught.value.line == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (b"host,owner\nweb1,x\n", "unknown column 'host'"),
        (b"owner\nx\n", "no 'name' column"),
        (b"name,name\nx,y\n", "appears twice"),
        (b"name;owner\nx;y\n", "separate columns with commas"),
        (b'name\n"unterminated\n', "not a readable CSV"),
    ],
)
def test_files_that_are_not_hosts_csv_are_refused_whole(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImport, match=message):
        parse_hosts_csv(data)


def test_size_limits() -> None:
    many = b"name\n" + b"".join(f"host{i}\n".encode() for i in range(101))
    with pytest.raises(InvalidImport, match="more than 100 rows"):
        parse_hosts_csv(many, max_rows=100)
    with pytest.raises(InvalidImport, match="at most 10 are accepted"):
        parse_hosts_csv(many, max_bytes=10)
    huge_cell = b'name\n"' + b"x" * 200_000 + b'"\n'  # beyond csv's own field limit
    with pytest.raises(InvalidImport):
        parse_hosts_csv(huge_cell)
