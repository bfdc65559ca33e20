"""Regenerate tests/corpus/malformed/ and its manifest.

Run from the repository root: ``python tests/corpus/generate_malformed.py``.

Each text case marks the place the error must be reported with ``‸`` (U+2038);
the marker is removed and its 1-based line and column go into manifest.yaml.
Byte cases (encodings, binary data) give the location explicitly. Cases whose
error has no position (empty file, UTF-16) record ``line: null``.
The files are committed; edit this script and rerun it to change the corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

MARK = "\u2038"
HERE = Path(__file__).resolve().parent / "malformed"

HEAD = "step_type: XGBoostTraining\nnode_type: internal\n"
DEP = """    input_path:
      type: training_data
      required: true
      compatible_sources: [TabularPreprocessing]
      semantic_keywords: [data, training]
"""
OUT = """    model_output:
      type: model_artifacts
      property_path: properties.ModelArtifacts.S3ModelArtifacts
      aliases: [ModelArtifacts]
"""


def native(dep: str = DEP, out: str = OUT, head: str = HEAD, extra: str = "") -> str:
    return f"{head}spec:\n  dependencies:\n{dep}  outputs:\n{out}{extra}"


def source_spec(outputs: str) -> str:
    """A source step (no dependencies) with the given flow-style outputs mapping."""
    return f"step_type: Loader\nnode_type: source\noutputs: {outputs}\n"


TEXT: list[tuple[str, str, str]] = []
BYTES: list[tuple[str, bytes, int | None, int | None, str]] = []


def text(name: str, content: str, why: str) -> None:
    TEXT.append((name, content, why))


def raw(name: str, content: bytes, line: int | None, column: int | None, why: str) -> None:
    BYTES.append((name, content, line, column, why))


# --- A. not YAML at all, or broken YAML syntax -----------------------------------------
text("syntax_tab_indent.yaml", HEAD + "spec:\n‸\toutputs: {}\n", "tab used for indentation")
text("syntax_unclosed_flow_seq.yaml",
     HEAD + "spec:\n  dependencies: [a, b\n  outputs‸: {}\n", "unclosed [")
text("syntax_unclosed_flow_map.yaml", HEAD + "description: {a: 1\n‸", "unclosed {")
text("syntax_unclosed_double_quote.yaml",
     HEAD + 'description: "never closed\n‸', "unterminated double-quoted scalar")
text("syntax_unclosed_single_quote.yaml",
     HEAD + "description: 'never closed\n‸", "unterminated single-quoted scalar")
text("syntax_mapping_value_in_value.yaml",
     "step_type: A‸: B\nnode_type: source\n", "'a: b: c' on one line")
text("syntax_bad_indent.yaml",
     "step_type: A\n  node_type‸: source\n", "a key indented under a scalar")
text("syntax_dedent_into_block.yaml",
     "step_type: A\nspec:\n    outputs: {}\n  ‸dependencies: {}\n", "inconsistent indentation")
text("syntax_undefined_alias.yaml", HEAD + "description: ‸*nowhere\n", "alias to no anchor")
text("syntax_reserved_at.yaml", HEAD + "description: ‸@handle\n", "'@' cannot start a token")
text("syntax_reserved_backtick.yaml", HEAD + "description: ‸`cmd`\n",
     "'`' cannot start a token")
text("syntax_two_documents.yaml",
     "step_type: A\nnode_type: singular\n‸---\nstep_type: B\nnode_type: singular\n",
     "two YAML documents in one spec file")
text("syntax_yaml_2_directive.yaml", "‸%YAML 2.0\n---\nstep_type: A\n",
     "a YAML version this parser cannot read")
text("syntax_bad_escape.yaml", HEAD + 'description: "bad ‸\\q escape"\n',
     "unknown escape in a double-quoted scalar")
text("syntax_python_object_tag.yaml",
     HEAD + "description: ‸!!python/object/apply:os.system ['echo pwned']\n",
     "python tag: must never be constructed")
text("syntax_python_name_tag.yaml", HEAD + "job_type: ‸!!python/name:os.system\n",
     "python/name tag")
text("syntax_python_module_tag.yaml", "‸!!python/module:os\n", "python/module tag on the root")
text("syntax_custom_tag.yaml", HEAD + "description: ‸!Ref SomeResource\n",
     "CloudFormation-style local tag")
text("syntax_set_tag.yaml", HEAD + "spec:\n  dependencies: ‸!!set {a, b}\n",
     "!!set is not a spec section")
text("not_yaml_markdown.yaml", "# Title\n\nSome *markdown* text:\n\n- item: one\nbad\n‸",
     "a markdown file")
text("not_yaml_ini.yaml", "[section]\n‸key = value\n", "an INI file")
text("not_yaml_python.yaml", "import os\ndef f()‸:\n    return 1\n", "a Python file")
text("not_yaml_json_broken.yaml", '{"step_type": "A", "node_type": "source",\n‸',
     "truncated JSON")
text("not_yaml_lone_colon.yaml", "step_type: A\n‸: orphan value\nnode_type: source\n",
     "a value without a key is a null key")
text("not_yaml_list_then_map.yaml", "- a\n‸b: c\n", "a list followed by a mapping key")
text("not_yaml_html.yaml", "<html>\n  <body>‸: x\n", "HTML is a plain scalar, then ':'")
text("syntax_control_char_bell.yaml", HEAD + "description: ring‸\x07\n",
     "a C0 control character (BEL) in a scalar")
text("syntax_control_char_escape.yaml", HEAD + "description: ‸\x1b[31mred\n",
     "an ANSI escape sequence")
text("syntax_anchor_without_name.yaml", HEAD + "description: &‸ x\n", "'&' with no name")
text("syntax_flow_in_block_key.yaml", "step_type: [A\nnode_type‸: source\n",
     "flow sequence never closed before a block key")
text("syntax_document_end_garbage.yaml", "step_type: A\n...\n‸garbage: [\n",
     "a second document after '...' that does not parse")

# --- B. YAML, but the wrong shape ------------------------------------------------------
text("shape_top_list.yaml", "‸- step_type: A\n- node_type: source\n", "a list, not a mapping")
text("shape_top_string.yaml", "‸just some text\n", "a plain string")
text("shape_top_int.yaml", "‸42\n", "a number")
text("shape_top_null.yaml", "‸~\n", "explicit null document")
text("shape_top_bool.yaml", "‸yes\n", "a YAML 1.1 boolean")
text("shape_top_json_list.yaml", '‸["step_type", "node_type"]\n', "a JSON array")
text("shape_top_quoted.yaml", "‸'step_type: A'\n", "a quoted string that looks like a mapping")
text("shape_spec_list.yaml", HEAD + "spec:\n  ‸- dependencies\n  - outputs\n",
     "'spec' is a list")
text("shape_spec_scalar.yaml", HEAD + "spec: ‸none\n", "'spec' is a string")
text("shape_spec_empty.yaml", HEAD + "spec:‸\n", "'spec' is empty (null)")
text("shape_dependencies_string.yaml",
     HEAD + "spec:\n  dependencies: ‸input_path\n  outputs:\n" + OUT,
     "dependencies is a string")
text("shape_outputs_int.yaml", HEAD + "spec:\n  dependencies:\n" + DEP + "  outputs: ‸3\n",
     "outputs is a number")
text("shape_dependency_string_item.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  - ‸input_path\n",
     "a list of names instead of dependency mappings")
text("shape_dependency_list_value.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  input_path: ‸[training_data]\n",
     "a dependency given as a list")
text("shape_output_null.yaml", source_spec("\n  model_output:‸\n"),
     "an output with no body")
text("shape_top_int_key.yaml", HEAD + "‸1: one\n", "a top-level key that is a number")
text("shape_top_null_key.yaml", HEAD + "‸~: nothing\n", "a top-level key that is null")
text("shape_top_list_key.yaml", HEAD + "? ‸[a, b]\n: value\n", "a top-level key that is a list")
text("shape_top_bool_key.yaml", HEAD + "‸on: push\n", "GitHub Actions 'on:' parses as True")
text("shape_both_layouts.yaml",
     native() + "‸dependencies: {}\n", "dependencies both at top level and under spec")
text("shape_header_differs.yaml",
     "step_type: A\nnode_type: ‸source\nspec:\n  node_type: sink\n  outputs:\n" + OUT,
     "node_type differs at top level and under spec")
text("shape_list_item_null.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  -‸\n", "a null item in a dependency list")
text("shape_list_item_nested_list.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  - ‸- logical_name: a\n",
     "a list inside a dependency list")
text("shape_list_item_no_logical_name.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  - ‸type: training_data\n",
     "a list item without logical_name")
text("shape_list_logical_name_null.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  - logical_name:‸\n    type: training_data\n",
     "a list item whose logical_name is null")

# --- C. wrong types --------------------------------------------------------------------
for name, value, col_note in [
    ("int", "123", "a number"),
    ("list", "[A, B]", "a list"),
    ("map", "{a: b}", "a mapping"),
    ("null", "null", "null"),
    ("empty", "''", "the empty string"),
    ("bool", "true", "a boolean"),
    ("float", "1.5", "a float"),
]:
    text(f"type_step_type_{name}.yaml",
         f"step_type: ‸{value}\nnode_type: source\noutputs:\n" + OUT, f"step_type is {col_note}")
for name, value in [("unknown", "middle"), ("int", "1"), ("capitalised", "Source"),
                    ("list", "[source]"), ("null", "~"), ("plural", "sources")]:
    text(f"type_node_type_{name}.yaml",
         f"step_type: A\nnode_type: ‸{value}\noutputs:\n" + OUT, f"node_type {value!r}")
DEP_HEAD = "step_type: A\nnode_type: sink\ndependencies:\n  d:\n    type: training_data\n"
for name, line in [
    ("required_text", "    required: ‸maybe\n"),
    ("required_int", "    required: ‸2\n"),
    ("required_list", "    required: ‸[true]\n"),
    ("compatible_sources_string", "    compatible_sources: ‸SingleStep\n"),
    ("compatible_sources_ints", "    compatible_sources: [‸1, 2]\n"),
    ("compatible_sources_map", "    compatible_sources: ‸{a: b}\n"),
    ("semantic_keywords_map", "    semantic_keywords: ‸{a: b}\n"),
    ("semantic_keywords_nested", "    semantic_keywords: [a, ‸[b]]\n"),
    ("data_type_int", "    data_type: ‸5\n"),
    ("data_type_list", "    data_type: ‸[S3Uri]\n"),
    ("dep_description_list", "    description: ‸[a, b]\n"),
]:
    text(f"type_{name}.yaml", DEP_HEAD + line, name.replace("_", " "))
for name, body in [
    ("dep_type_unknown", "  d:\n    type: ‸model\n"),
    ("dep_type_int", "  d:\n    type: ‸42\n"),
    ("dep_type_null", "  d:\n    type: ‸~\n"),
    ("dep_type_list", "  d:\n    type: ‸[training_data]\n"),
    ("dep_type_case", "  d:\n    type: ‸Training_Data\n"),
]:
    text(f"type_{name}.yaml", "step_type: A\nnode_type: sink\ndependencies:\n" + body,
         name.replace("_", " "))
for name, outputs in [
    ("out_type_unknown", "{o: {type: ‸artifact, property_path: properties.X}}"),
    ("out_type_int", "{o: {type: ‸7, property_path: properties.X}}"),
    ("property_path_int", "{o: {type: model_artifacts, property_path: ‸42}}"),
    ("property_path_list", "{o: {type: model_artifacts, property_path: ‸[properties.X]}}"),
    ("aliases_string", "{o: {type: model_artifacts, property_path: properties.X, aliases: ‸x}}"),
    ("aliases_ints", "{o: {type: model_artifacts, property_path: properties.X, aliases: [‸1]}}"),
    ("out_data_type_bool",
     "{o: {type: model_artifacts, property_path: properties.X, data_type: ‸false}}"),
]:
    text(f"type_{name}.yaml", source_spec(outputs), name.replace("_", " "))
text("type_top_description_map.yaml",
     "step_type: A\nnode_type: source\ndescription: ‸{a: 1}\noutputs:\n" + OUT,
     "description is a mapping")
text("type_job_type_list.yaml",
     "step_type: A\nnode_type: source\njob_type: ‸[training]\noutputs:\n" + OUT,
     "job_type is a list")
text("type_list_logical_name_int.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  - logical_name: ‸12\n"
     "    type: training_data\n", "a logical_name that is a number")
text("type_binary_tag.yaml", HEAD.replace("XGBoostTraining", "‸!!binary aGVsbG8="),
     "step_type given as !!binary bytes")

# --- D. unknown fields -----------------------------------------------------------------
text("unknown_top_stpe_type.yaml", "‸stpe_type: A\nnode_type: source\noutputs:\n" + OUT,
     "misspelt step_type")
text("unknown_top_dependancies.yaml",
     "step_type: A\nnode_type: sink\n‸dependancies:\n  d: {type: training_data}\n",
     "misspelt dependencies")
text("unknown_top_output.yaml", "step_type: A\nnode_type: source\n‸output:\n" + OUT,
     "'output' for 'outputs'")
text("unknown_top_node_type_dash.yaml", "step_type: A\n‸node-type: source\noutputs:\n" + OUT,
     "'node-type' for 'node_type'")
text("unknown_spec_registry.yaml",
     HEAD + "spec:\n  ‸registry: {x: 1}\n  dependencies:\n" + DEP + "  outputs:\n" + OUT,
     "an unknown key inside 'spec'")
text("unknown_spec_outputz.yaml", HEAD + "spec:\n  dependencies:\n" + DEP + "  ‸outputz:\n" + OUT,
     "misspelt outputs under spec")
for name, line in [
    ("requried", "    ‸requried: true\n"),
    ("compatible_source", "    ‸compatible_source: [A]\n"),
    ("semantic_keyword", "    ‸semantic_keyword: [a]\n"),
    ("dataType", "    ‸dataType: S3Uri\n"),
    ("name", "    ‸name: d\n"),
    ("optional", "    ‸optional: true\n"),
    ("output_type_in_dependency", "    ‸output_type: training_data\n"),
    ("property_path_in_dependency", "    ‸property_path: properties.X\n"),
    ("null_key_in_dependency", "    ‸~: x\n"),
    ("int_key_in_dependency", "    ‸3: x\n"),
]:
    text(f"unknown_dep_{name}.yaml", DEP_HEAD + line, f"unknown dependency key: {name}")
for name, extra in [
    ("propertyPath", "‸propertyPath: properties.Y"),
    ("alias", "‸alias: [x]"),
    ("dependency_type_in_output", "‸dependency_type: model_artifacts"),
    ("required_in_output", "‸required: true"),
    ("compatible_sources_in_output", "‸compatible_sources: [A]"),
]:
    text(f"unknown_out_{name}.yaml",
         source_spec(f"{{o: {{type: model_artifacts, property_path: properties.X, {extra}}}}}"),
         f"unknown output key: {name}")
text("unknown_type_and_dependency_type.yaml",
     DEP_HEAD + "    ‸dependency_type: training_data\n",
     "'type' and 'dependency_type' both given")
text("unknown_logical_name_differs.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  d:\n    logical_name: ‸e\n"
     "    type: training_data\n", "logical_name differs from its key")

# --- E. duplicate keys -----------------------------------------------------------------
text("dup_top_step_type.yaml",
     "step_type: A\nnode_type: source\n‸step_type: B\noutputs:\n" + OUT, "step_type twice")
text("dup_top_spec.yaml", native() + "‸spec: {}\n", "two spec sections")
text("dup_under_spec.yaml",
     HEAD + "spec:\n  outputs:\n" + OUT + "  dependencies:\n" + DEP + "  ‸outputs: {}\n",
     "outputs twice under spec")
text("dup_dependency_name.yaml",
     HEAD + "spec:\n  dependencies:\n" + DEP + DEP.replace("    input_path", "    ‸input_path")
     + "  outputs:\n" + OUT, "the same dependency twice")
text("dup_output_name.yaml",
     source_spec("\n" + OUT.replace("    ", "  ", 1) + "  ‸model_output: {type: model_artifacts,"
                 " property_path: properties.Y}\n"), "the same output twice")
text("dup_key_in_dependency.yaml", DEP_HEAD + "    required: true\n    ‸required: false\n",
     "required twice in one dependency")
text("dup_flow_mapping.yaml",
     source_spec("{o: {type: model_artifacts, ‸type: processing_output, property_path: p}}"),
     "a repeated key in a flow mapping")
text("dup_quoted_and_plain.yaml",
     "step_type: A\nnode_type: source\n‸'step_type': B\noutputs:\n" + OUT,
     "'step_type' quoted and plain")
text("dup_explicit_key.yaml",
     "step_type: A\nnode_type: source\n? ‸step_type\n: B\noutputs:\n" + OUT,
     "the second step_type as an explicit '?' key")
text("dup_bool_spellings.yaml",
     HEAD + "spec:\n  dependencies:\n" + DEP + "  outputs:\n" + OUT
     + "registry:\n  yes: 1\n  ‸true: 2\n", "'yes' and 'true' are the same YAML 1.1 key")
text("dup_int_spellings.yaml",
     HEAD + "spec:\n  dependencies:\n" + DEP + "  outputs:\n" + OUT
     + "registry:\n  16: a\n  ‸0x10: b\n", "16 and 0x10 are the same key")
text("dup_in_metadata_deep.yaml",
     native(extra="compute:\n  instance:\n    type: ml.m5.xlarge\n    ‸type: ml.m5.2xlarge\n"),
     "a repeated key deep in an extra section")
text("dup_in_list_item.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  - logical_name: d\n"
     "    type: training_data\n    ‸logical_name: e\n", "logical_name twice in a list item")
text("dup_node_type_under_spec.yaml",
     HEAD + "spec:\n  node_type: internal\n  ‸node_type: sink\n  dependencies:\n" + DEP
     + "  outputs:\n" + OUT, "node_type twice under spec")

# --- F. nesting (the 30,000-level cases are generated in the test) ---------------------
text("nesting_flow_seq_65.yaml",
     HEAD + "spec:\n  dependencies:\n" + DEP + "  outputs:\n" + OUT
     + "x: " + "[" * 64 + "‸[" + "]" * 65 + "\n", "65 nested flow sequences in metadata")
text("nesting_flow_map_65.yaml",
     HEAD + "x: " + "{a: " * 63 + "{‸a: {a: 1" + "}" * 65 + "\n",
     "65 nested flow mappings: the key of the 64th is 65 deep")
text("nesting_dashes_200.yaml",
     HEAD + "x:\n" + "- " * 64 + "‸" + "- " * 136 + "end\n", "200 nested block sequences")
text("nesting_block_maps_100.yaml",
     HEAD + "x:\n" + "".join(" " * i + f"k{i}:" + ("\n" if i < 99 else " end\n")
                             for i in range(1, 100)).replace(" " * 64 + "k64:", " " * 64 + "‸k64:"),
     "100 nested block mappings (indentation)")
text("nesting_1001_flow.yaml",
     HEAD + "x:\n" + " [\n" * 64 + " ‸[\n" + " [\n" * 936 + " ]\n" * 1001,
     "1001 levels: past libyaml's own limit")
text("nesting_apostrophe_prefix.yaml",
     HEAD + "x: [it's, " + "[" * 63 + "‸[" + "]" * 64 + "]\n",
     "a quote-looking character before deep nesting")
text("nesting_hash_prefix.yaml",
     HEAD + "x: [a#b, " + "[" * 63 + "‸[" + "]" * 64 + "]\n",
     "'#' inside a plain scalar before deep nesting")
text("nesting_unclosed_deep.yaml",
     HEAD + "x: " + "[" * 64 + "‸" + "[" * 400 + "\n", "deep and never closed")

# --- G. alias bombs ----------------------------------------------------------------------
lol = "a0: &a0 [lol]\n" + "".join(
    f"a{i}: {'‸' if i == 5 else ''}&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n"
    for i in range(1, 10))
text("bomb_billion_laughs.yaml", HEAD + lol, "the classic billion laughs")
maps = "m0: &m0 {k: v}\n" + "".join(
    f"m{i}: {'‸' if i == 7 else ''}&m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(5))
    + "}\n" for i in range(1, 12))
text("bomb_mappings.yaml", HEAD + maps, "nested mappings of aliases")
merge = "m0: &m0 {k0: v}\n" + "".join(
    f"m{i}: &m{i} {{<<: {'‸' if i == 8 else ''}[" + ", ".join([f"*m{i - 1}"] * 4)
    + f"], k{i}: v}}\n" for i in range(1, 20))
text("bomb_merge_keys.yaml", HEAD + merge, "merge keys multiplying")
text("bomb_under_spec.yaml",
     HEAD + "spec:\n  description: &d0 [x]\n" + "".join(
         f"  d{i}: {'‸' if i == 5 else ''}&d{i} [" + ", ".join([f"*d{i - 1}"] * 10) + "]\n"
         for i in range(1, 8)), "a bomb inside spec")
text("bomb_in_key.yaml",
     HEAD + lol.replace("a5: ‸&a5", "a5: &a5").replace("a5: &a5", "a5: ‸&a5")
     + "b: {? *a5 : 1}\n", "an alias bomb used as a mapping key")
text("bomb_wide_list.yaml",
     HEAD + "a: &a [" + ", ".join(["x"] * 400) + "]\nb: ‸[" + ", ".join(["*a"] * 300) + "]\n",
     "one wide list repeated: 120,000 values")

# --- J. empty ------------------------------------------------------------------------------
raw("empty_zero_bytes.yaml", b"", None, None, "a 0-byte file")
raw("empty_whitespace.yaml", b"   \n\t\n  \n", None, None, "only whitespace")
raw("empty_comments.yaml", b"# just a comment\n# another\n", None, None, "only comments")
raw("empty_document_marker.yaml", b"---\n", 2, 1, "only '---': a null document")
raw("empty_document_end.yaml", b"...\n", 1, 1, "only '...': libyaml wants a node")
raw("empty_bom_only.yaml", b"\xef\xbb\xbf", None, None, "only a UTF-8 BOM")
raw("empty_newlines.yaml", b"\n\n\n", None, None, "only newlines")

# --- I. binary data and encodings ------------------------------------------------------------
raw("binary_png.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, 1, "a PNG header")
raw("binary_gzip.yaml", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 1, 4, "a gzip header")
raw("binary_elf.yaml", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8, 1, 8, "an ELF header")
raw("binary_nul_in_yaml.yaml", b"step_type: A\nnode_type: so\x00urce\n", 2, 14,
    "a NUL byte inside an otherwise valid spec")
raw("binary_random_no_nul.yaml", bytes(range(0x80, 0xA0)) + b"\n", 1, 1,
    "high bytes that are not UTF-8")
raw("encoding_invalid_utf8.yaml", b"step_type: A\nnode_type: source\ndescription: ab\xffcd\n",
    3, 16, "a 0xFF byte")
raw("encoding_latin1.yaml",
    "step_type: A\nnode_type: singular\ndescription: café\n".encode("latin-1"), 3, 17,
    "Latin-1 text (é as one byte)")
raw("encoding_latin1_after_utf8.yaml",
    "step_type: A\nnode_type: singular\ndescription: naïve café ".encode() + b"\xe9\n", 3, 25,
    "UTF-8 then a Latin-1 byte: column counts characters, not bytes")
raw("encoding_cp1252_quotes.yaml", b"step_type: A\nnode_type: singular\ndescription: \x93hi\x94\n",
    3, 14, "Windows-1252 smart quotes")
raw("encoding_truncated_multibyte.yaml",
    b"step_type: A\nnode_type: singular\ndescription: \xe2\x82", 3, 14,
    "a multi-byte sequence cut at end of file")
raw("encoding_overlong.yaml", b"step_type: A\nnode_type: singular\ndescription: \xc0\xaf\n",
    3, 14, "an overlong encoding of '/'")
raw("encoding_surrogate.yaml", b"step_type: A\nnode_type: singular\ndescription: \xed\xa0\x80\n",
    3, 14, "a UTF-8 encoded surrogate")
raw("encoding_utf16le_bom.yaml", "step_type: A\nnode_type: singular\n".encode("utf-16"),
    None, None, "UTF-16 with a byte-order mark")
raw("encoding_utf16be_bom.yaml",
    b"\xfe\xff" + "step_type: A\nnode_type: singular\n".encode("utf-16-be"),
    None, None, "UTF-16 big-endian with a byte-order mark")
raw("encoding_utf32le_bom.yaml", "step_type: A\n".encode("utf-32"), None, None,
    "UTF-32 with a byte-order mark")
raw("encoding_utf16le_no_bom.yaml", "step_type: A\n".encode("utf-16-le"), 1, 2,
    "UTF-16 without a byte-order mark (NUL bytes)")

# --- K. YAML 1.1 surprises where a string was meant --------------------------------------
for name, value in [("NO", "NO"), ("yes", "yes"), ("off", "off"), ("On", "On"),
                    ("octal_0777", "0777"), ("sexagesimal_12_30", "12:30"), ("float_exp", "1.5e+3"),
                    ("inf", ".inf"), ("nan", ".NaN"), ("date", "2024-01-01"),
                    ("hex", "0x1F"), ("underscore_int", "1_000"), ("tilde", "~")]:
    text(f"yaml11_step_type_{name}.yaml",
         f"step_type: ‸{value}\nnode_type: source\noutputs:\n" + OUT,
         f"step_type {value} is not a string")
for name, key in [("NO", "NO"), ("octal", "0777"), ("time", "12:30"), ("true", "true"),
                  ("null", "null"), ("float", "1.0")]:
    text(f"yaml11_logical_name_{name}.yaml",
         "step_type: A\nnode_type: sink\ndependencies:\n  ‸" + key + ":\n    type: training_data\n",
         f"logical name key {key} is not a string")
text("yaml11_output_key_no.yaml",
     source_spec("\n  ‸no:\n    type: model_artifacts\n    property_path: properties.N\n"),
     "'no' as an output name is False")
text("yaml11_compatible_sources.yaml", DEP_HEAD + "    compatible_sources: [Norway, ‸NO]\n",
     "country code NO in a list of names")
text("yaml11_aliases_octal.yaml",
     source_spec("{o: {type: model_artifacts, property_path: properties.X, aliases: [‸0777]}}"),
     "an alias that is an octal number")
text("yaml11_keywords_on_off.yaml", DEP_HEAD + "    semantic_keywords: [‸on, off]\n",
     "on/off as keywords")
text("yaml11_job_type_time.yaml",
     "step_type: A\nnode_type: source\njob_type: ‸12:30\noutputs:\n" + OUT,
     "job_type 12:30 is 750")
text("yaml11_data_type_date.yaml", DEP_HEAD + "    data_type: ‸2024-01-01\n",
     "data_type is a date")
text("yaml11_description_float.yaml",
     "step_type: A\nnode_type: source\ndescription: ‸1.0\noutputs:\n" + OUT,
     "description 1.0 is a float")
text("yaml11_property_path_bool.yaml",
     source_spec("{o: {type: model_artifacts, property_path: ‸off}}"), "property_path off")

# --- L. node-type rules -------------------------------------------------------------------
for name, head, body in [
    ("source_with_dependencies", "source", "dependencies:\n" + DEP + "outputs:\n" + OUT),
    ("source_without_outputs", "source", "outputs: {}\n"),
    ("source_nothing", "source", ""),
    ("internal_without_dependencies", "internal", "outputs:\n" + OUT),
    ("internal_without_outputs", "internal", "dependencies:\n" + DEP),
    ("sink_with_outputs", "sink", "dependencies:\n" + DEP + "outputs:\n" + OUT),
    ("sink_without_dependencies", "sink", "dependencies: []\n"),
    ("singular_with_dependencies", "singular", "dependencies:\n" + DEP),
    ("singular_with_outputs", "singular", "outputs:\n" + OUT),
]:
    text(f"nodetype_{name}.yaml",
         f"step_type: A\nnode_type: ‸{head}\n" + body.replace("    ", "  ").replace(
             "  type", "    type").replace("  required", "    required").replace(
             "  compatible", "    compatible").replace("  semantic", "    semantic").replace(
             "  property", "    property").replace("  aliases", "    aliases"),
         f"node type rule: {name.replace('_', ' ')}")
text("nodetype_under_spec.yaml",
     "step_type: A\nspec:\n  node_type: ‸sink\n  outputs:\n" + OUT,
     "node_type given under spec; the rule points there")

# --- M. property_path ---------------------------------------------------------------------
for name, value in [("no_prefix", "ModelArtifacts.S3ModelArtifacts"),
                    ("capitalised", "Properties.ModelArtifacts"),
                    ("empty", "''"), ("bare_properties", "properties"),
                    ("leading_space", "' properties.X'"), ("steps_prefix", "steps.properties.X"),
                    ("null", "~")]:
    text(f"property_path_{name}.yaml",
         source_spec(f"{{o: {{type: model_artifacts, property_path: ‸{value}}}}}"),
         f"property_path {value}")
text("property_path_missing.yaml", source_spec("{o: ‸{type: model_artifacts}}"),
     "an output without property_path")

# --- N. logical names -----------------------------------------------------------------------
for name, key in [("space", "bad name"), ("dot", "a.b"), ("slash", "a/b"), ("colon", "'a:b'"),
                  ("dollar", "$x"), ("unicode", "ünïcode"), ("empty", "''"),
                  ("parent", "'..'")]:
    text(f"logical_name_{name}.yaml",
         "step_type: A\nnode_type: sink\ndependencies:\n  ‸" + key + ":\n    type: training_data\n",
         f"bad logical name {key!r} as a key")
for name, value in [("space", "bad name"), ("unicode", "naïve"), ("empty", "''")]:
    text(f"logical_name_list_{name}.yaml",
         "step_type: A\nnode_type: sink\ndependencies:\n  - logical_name: ‸" + value
         + "\n    type: training_data\n", f"bad logical name {value!r} in a list")
text("logical_name_output_space.yaml",
     source_spec("{‸out put: {type: model_artifacts, property_path: properties.X}}"),
     "bad output logical name")

# --- O. duplicate logical names in list form ---------------------------------------------------
text("list_dup_dependencies.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  - logical_name: d\n    type: training_data\n"
     "  - ‸logical_name: d\n    type: processing_output\n", "two dependencies named d")
text("list_dup_outputs.yaml",
     "step_type: A\nnode_type: source\noutputs:\n"
     "  - {logical_name: o, type: model_artifacts, property_path: properties.A}\n"
     "  - ‸{logical_name: o, type: model_artifacts, property_path: properties.B}\n",
     "two outputs named o")
text("list_dup_under_spec.yaml",
     HEAD + "spec:\n  dependencies:\n    - {logical_name: d, type: training_data}\n"
     "    - {logical_name: e, type: training_data}\n"
     "    - ‸{logical_name: d, type: training_data}\n  outputs:\n" + OUT,
     "the third item repeats the first")
text("list_dup_flow_list.yaml",
     "step_type: A\nnode_type: sink\ndependencies: [{logical_name: d, type: training_data}, "
     "‸{logical_name: d, type: training_data}]\n", "a flow list with a repeat")

# --- P. missing fields ---------------------------------------------------------------------
text("missing_step_type.yaml", "‸node_type: source\noutputs:\n" + OUT, "no step_type")
text("missing_node_type.yaml", "‸step_type: A\noutputs:\n" + OUT, "no node_type")
text("missing_both.yaml", "‸description: nothing else\n", "neither step_type nor node_type")
text("missing_dependency_type.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  d:\n    ‸required: true\n",
     "a dependency without type")
text("missing_output_type.yaml",
     source_spec("\n  o:\n    ‸property_path: properties.X\n"), "an output without type")
text("missing_dependency_body_empty_map.yaml",
     "step_type: A\nnode_type: sink\ndependencies:\n  d: ‸{}\n", "an empty dependency mapping")


def location(content: str) -> tuple[str, int, int]:
    at = content.index(MARK)
    if content.count(MARK) != 1:
        raise ValueError("one marker per case")
    before = content[:at]
    line = before.count("\n") + 1
    column = at - (before.rfind("\n") + 1) + 1
    return content.replace(MARK, ""), line, column


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for old in HERE.glob("*.yaml"):
        if old.name != "manifest.yaml":
            old.unlink()
    manifest: dict[str, dict[str, object]] = {}
    for name, content, why in TEXT:
        if name in manifest:
            raise ValueError(f"duplicate case {name}")
        body, line, column = location(content)
        (HERE / name).write_bytes(body.encode())
        manifest[name] = {"line": line, "column": column, "why": why}
    for name, data, at_line, at_column, why in BYTES:  # None: no position
        if name in manifest:
            raise ValueError(f"duplicate case {name}")
        (HERE / name).write_bytes(data)
        manifest[name] = {"line": at_line, "column": at_column, "why": why}
    lines = [
        "# Generated by tests/corpus/generate_malformed.py: edit that script, not this file.",
        "# file: where load_spec_file must report the error (1-based; null = no position).",
    ]
    for name in sorted(manifest):
        entry = manifest[name]
        lines.append(
            f"{name}: {{line: {json.dumps(entry['line'])}, column: {json.dumps(entry['column'])},"
            f" why: {json.dumps(entry['why'])}}}"
        )
    (HERE / "manifest.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(manifest)} cases")


if __name__ == "__main__":
    main()
