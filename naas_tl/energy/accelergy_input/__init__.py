"""What Accelergy 0.4 accepts as input, and a checker for the YAML naas_tl writes.

Accelergy cannot run here, so naas_tl checks its own YAML against the rules below. They come
from reading Accelergy's public sources (github.com/Accelergy-Project/accelergy, the v0.4 code
base; the files and functions are named with each rule). Nothing here is copied from them.

Loading (accelergy/utils/yaml.py: load_yaml, load_file_and_includes, get_yaml, get_base_yaml)

L1. Accelergy renders every input file as a Jinja2 template (StrictUndefined) before it parses
    it. So the text must not contain ``{{``, ``{%`` or ``{#``, not even in a YAML comment.
L2. The parser is ruamel.yaml's round-trip loader: YAML 1.2, core schema, with each scalar's
    quote style kept. A plain scalar gets its YAML 1.2 type: ``1e-9`` is a float, and
    ``yes``/``on``/``no`` are strings. PyYAML (naas_tl) reads YAML 1.1, so a plain scalar that
    YAML 1.1 and 1.2 type differently means different things to the tools. naas_tl writes
    none.

Evaluation of one value (accelergy/parsing_utils.py: parse_expression_for_arithmetic,
cast_to_numeric, is_quoted_string, parse_expressions_sequentially_replacing_bindings,
propagate_required_keys)

E1. A single- or double-quoted scalar is a string. Where strings are allowed, it is kept as
    written.
E2. Otherwise, a value whose text is true or false (any case) becomes a bool. A value that both
    float() and int() accept becomes a number; a float equal to an integer becomes an int.
E3. Any other non-string value (a number, null, a list, a mapping) is kept.
E4. Any other string is evaluated as a Python expression. There are no builtins: only a fixed
    set of math functions and constants (ceil, floor, log2, sqrt, min, max, abs, round, ...),
    plus the bindings. The bindings are the values evaluated before it in the same mapping,
    then the enclosing context. In a v0.4 input a failure stops Accelergy with "Failed to
    evaluate: ...". Inputs older than v0.4 fell back to the string, with a warning. A bare word
    (``LPDDR4``) is a NameError and ``45nm`` is a SyntaxError. So every string value must be
    quoted, and a plain string value is always an intended expression.
E5. In some places strings are not allowed: the ``[a..b]`` range of a name, ``area_scale`` and
    ``energy_scale``. There E1 does not apply, and the value must evaluate to a number.
E6. After a v0.4 component's (or subtree node's) attributes are evaluated, ``technology`` and
    ``global_cycle_seconds`` must be among them or among the enclosing bindings.

Architecture (accelergy/raw_inputs_2_dicts.py: architecture_input_parser,
tree_node_classification, parse_architecture_subtree)

A1. ``architecture`` needs a ``version`` and a ``subtree`` (or ``local``) list. Every node needs
    a ``name``. Only the first top-level subtree node is read. Its name prefixes the flattened
    component names (``system_top_level.DRAM[1..1]``).
A2. A subtree node takes the attributes it inherits, updated with its own, and evaluates them
    in that order. Everything below it inherits the result.
A3. A ``local`` component's own attributes come first, then the inherited ones it does not set.
    The whole mapping is evaluated in that order (E1-E6), with the top-level ``variables`` as
    bindings.
A4. The ``[a..b]`` range in a name is evaluated over the attributes, with strings not allowed
    (E5). It must give integers with b >= a.

Classes (accelergy/arch_dict_2_obj.py: fully_define_arch_dict; accelergy/component_class.py:
get_default_attr_to_apply)

C1. ``subclass``, when present, names the class instead of ``class``.
C2. Rules for a compound class (one listed under ``compound_components``):
    * every ``required_actions`` entry must be one of the class's actions;
    * every attribute whose class default is ``must_specify`` must be given a non-null value;
    * the class's other defaults are added after the component's attributes, in class order,
      and a given value wins over a default;
    * the result is evaluated again in order with no other bindings. So a default such as
      ``memory_width: max(32, width)`` sees the component's ``width``.
    Any other class is a primitive, and Accelergy's plug-ins decide whether they know it.

Compound internals (accelergy/compound_component.py: process_subcomponents,
define_attrs_area_scale_for_subcomponent, apply_internal_bindings, define_subcomponent_name,
flatten_action_list_for_an_action, define_subactions, parse_energy_scale, process_area_scale,
find_subcomponent_obj)

I1. Subcomponent names' ranges are evaluated over the compound's attributes (A4).
I2. A subcomponent's attributes are evaluated in order, with the compound's attributes as
    bindings. So ``width: memory_width`` binds. Then its class defaults are applied (C2) and it
    is evaluated again. A compound subclass is expanded the same way, recursively.
I3. ``area_scale`` and ``energy_scale`` are evaluated over the compound's and the
    subcomponent's attributes, with strings not allowed (E5).
I4. Each action names its subcomponents. Their ranges are evaluated over the compound's
    attributes merged with the action's arguments, and must lie within the declared ones. The
    subactions' arguments are evaluated over the same bindings, and so is their
    ``energy_scale`` (E5).

Versions and tables (accelergy/version.py: check_input_parser_version, version_compare;
raw_inputs_2_dicts.py: ERT_input_parser)

V1. ``version`` is compared as a dotted string of integers. The architecture's and the
    compound components' versions are collected in one set, and min() is taken when they
    differ, so they must all have one type. naas_tl writes the string '0.4' everywhere.
V2. ERT and ART inputs are taken as they are: their names and energies are not evaluated.

`check_accelergy_input(text)` applies L1 and L2 to any document. To an ``architecture:``
document it also applies A*, C*, I*, E* and V1, using the ``compound_components`` in the same
text (or given separately). It evaluates expressions as E4 says, but first checks that their
syntax tree uses only arithmetic, comparisons, conditional expressions, names and calls of
known functions. `accelergy_view` also returns every component's attributes as Accelergy
evaluates them.
"""
from naas_tl.energy.accelergy_input.values import JINJA_DELIMITERS, ACCELERGY_VERSIONS, REQUIRED_KEYS, MUST_SPECIFY, FUNCTIONS, Quoted, AccelergyEvalError, resolve_yaml12, plain_is_string_in_both, evaluate
from naas_tl.energy.accelergy_input.checker import AccelergyView, accelergy_view, check_accelergy_input
from naas_tl.energy.accelergy_input.compound import compound_tables

__all__ = ["ACCELERGY_VERSIONS", "AccelergyEvalError", "AccelergyView", "FUNCTIONS", "JINJA_DELIMITERS", "MUST_SPECIFY", "Quoted", "REQUIRED_KEYS", "accelergy_view", "check_accelergy_input", "compound_tables", "evaluate", "plain_is_string_in_both", "resolve_yaml12"]
