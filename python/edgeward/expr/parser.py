"""CEL syntax (docs/cel.md §2, §3): tokens to a syntax tree, macros expanded.

Recursive descent with precedence climbing for the binary operators, so the
Python stack grows by a handful of frames per *nesting* level (parentheses,
brackets, arguments, ternary branches), never per operator in a chain. The
depth limit is enforced both on the finished tree and, defensively, on the
nesting while descending: no input can exhaust the stack.
"""

from __future__ import annotations

from typing import Final

from edgeward.expr import ast
from edgeward.expr.errors import PolicyExprError
from edgeward.expr.functions import ALIASES, IMPLICIT_ARGUMENTS, VARIABLE_ALIASES, is_qualified
from edgeward.expr.lexer import RESERVED, Lexer, Token
from edgeward.expr.values import INT64_MAX, INT64_MIN, UInt

Parsed = tuple[ast.Node, int]  # a node and its depth

# Binary operators by precedence (higher binds tighter).
_PRECEDENCE: Final = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "in": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
}
_COMPREHENSIONS: Final = {
    "sortBy": (2,),
    "all": (2,),
    "exists": (2,),
    "exists_one": (2,),
    "filter": (2,),
    "map": (2, 3),
}


def parse(source: str, *, max_depth: int, start: int = 0, end: int | None = None) -> ast.Node:
    """The tree of ``source[start:end]``; errors are located in `source`."""
    return _Parser(source, start, end, max_depth).parse()


class _Parser:
    def __init__(self, source: str, start: int, end: int | None, max_depth: int) -> None:
        self.source = source
        self.tokens: list[Token] = Lexer(source, start, end).tokens()
        self.i = 0
        self.max_depth = max_depth
        self.nesting = 0

    # --- helpers ----------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != "eof":
            self.i += 1
        return token

    def error(self, message: str, pos: int | None = None) -> PolicyExprError:
        return PolicyExprError(message, self.source, self.tok.pos if pos is None else pos)

    def unexpected(self) -> PolicyExprError:
        token = self.tok
        if token.kind == "eof":
            return self.error("unexpected end of expression")
        text = self.source[token.pos : token.end]
        return self.error(f"unexpected {text!r}")

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            if self.tok.kind == "eof":
                raise self.error(f"expected {kind!r} before the end of the expression")
            raise self.error(
                f"expected {kind!r}, found {self.source[self.tok.pos : self.tok.end]!r}"
            )
        return self.advance()

    def node(self, node: ast.Node, *child_depths: int) -> Parsed:
        depth = 1 + max(child_depths, default=0)
        if depth > self.max_depth:
            raise self.error(f"expression nested too deeply (max_depth {self.max_depth})", node.pos)
        return node, depth

    # --- grammar ------------------------------------------------------------------------

    def parse(self) -> ast.Node:
        if self.tok.kind == "eof":
            raise self.error("empty expression")
        node, _ = self.expr()
        if self.tok.kind != "eof":
            raise self.unexpected()
        return node

    def expr(self) -> Parsed:
        """Expr = ConditionalOr ["?" ConditionalOr ":" Expr]."""
        self.nesting += 1
        if self.nesting > self.max_depth:
            raise self.error(f"expression nested too deeply (max_depth {self.max_depth})")
        try:
            condition, d1 = self.binary(1)
            if self.tok.kind != "?":
                return condition, d1
            question = self.advance()
            then, d2 = self.binary(1)
            self.expect(":")
            otherwise, d3 = self.expr()
            node = ast.Conditional(question.pos, condition, then, otherwise)
            return self.node(node, d1, d2, d3)
        finally:
            self.nesting -= 1

    def binary(self, min_precedence: int) -> Parsed:
        """Precedence climbing; a run of one of `&&` / `||` becomes one n-ary
        `Logic` node."""
        left, depth = self.unary()
        chain: list[Parsed] = []
        chain_op: str | None = None
        while True:
            op = self.tok.kind
            precedence = _PRECEDENCE.get(op)
            if precedence is None or precedence < min_precedence:
                return left, depth
            operator = self.advance()
            right, right_depth = self.binary(precedence + 1)
            if op in ("&&", "||"):
                if op != chain_op:
                    chain, chain_op = [(left, depth)], op
                chain.append((right, right_depth))
                operands = tuple(n for n, _ in chain)
                left, depth = self.node(
                    ast.Logic(operands[0].pos, op, operands), *(d for _, d in chain)
                )
            else:
                chain_op = None
                left, depth = self.node(
                    ast.Binary(operator.pos, op, left, right), depth, right_depth
                )

    def unary(self) -> Parsed:
        token = self.tok
        if token.kind == "-" and self.peek().kind in ("int", "double"):
            return self.member()  # a negative literal, folded by primary()
        if token.kind in ("!", "-"):
            count = 0
            while self.tok.kind == token.kind:
                self.advance()
                count += 1
            operand, depth = self.member()
            if count % 2 == 0:  # an even run cancels out (as cel-go parses it)
                return operand, depth
            return self.node(ast.Unary(token.pos, token.kind, operand), depth)
        return self.member()

    def member(self) -> Parsed:
        node, depth = self.primary()
        while True:
            kind = self.tok.kind
            if kind == ".":
                self.advance()
                name_token = self.tok
                if name_token.kind == "quoted":
                    self.advance()
                    node, depth = self.node(
                        ast.Select(name_token.pos, node, name_token.value), depth
                    )
                    continue
                name = self.identifier(reserved_ok=True)
                if self.tok.kind == "(":
                    node, depth = self.member_call((node, depth), name_token, self.arguments())
                elif self.tok.kind == "{":
                    raise self.error("message construction is not supported")
                else:
                    node, depth = self.node(ast.Select(name_token.pos, node, name), depth)
            elif kind == "[":
                bracket = self.advance()
                index, index_depth = self.expr()
                self.expect("]")
                node, depth = self.node(ast.Index(bracket.pos, node, index), depth, index_depth)
            else:
                return node, depth

    def identifier(self, *, reserved_ok: bool = False) -> str:
        """An identifier; reserved words are fine as field and method names
        (`conn.client_ip.as`), as cel-go parses them."""
        token = self.tok
        if token.kind != "ident":
            raise self.unexpected()
        if token.value in RESERVED and not reserved_ok:
            raise self.error(f"reserved identifier {token.value!r}")
        self.advance()
        return str(token.value)

    def arguments(self) -> list[Parsed]:
        self.expect("(")
        args: list[Parsed] = []
        if self.tok.kind != ")":
            while True:
                args.append(self.expr())
                if self.tok.kind != ",":
                    break
                self.advance()
        self.expect(")")
        return args

    def primary(self) -> Parsed:
        token = self.tok
        kind = token.kind
        if kind == "-":  # a negative numeric literal (see unary)
            if self.peek().kind not in ("int", "double"):
                self.advance()
                raise self.unexpected()
            self.advance()
            number = self.advance()
            if number.kind == "int":
                return self.int_literal(token.pos, -number.value)
            return self.node(ast.Literal(token.pos, -number.value))
        if kind == "int":
            self.advance()
            return self.int_literal(token.pos, token.value)
        if kind == "uint":
            self.advance()
            return self.node(ast.Literal(token.pos, UInt(token.value)))
        if kind in ("double", "string", "bytes"):
            self.advance()
            return self.node(ast.Literal(token.pos, token.value))
        if kind in ("true", "false", "null"):
            self.advance()
            return self.node(ast.Literal(token.pos, {"true": True, "false": False}.get(kind)))
        if kind == "(":
            self.advance()
            inner, depth = self.expr()
            self.expect(")")
            if depth + 1 > self.max_depth:  # a parenthesised group counts one level
                raise self.error(
                    f"expression nested too deeply (max_depth {self.max_depth})", token.pos
                )
            return inner, depth + 1
        if kind == "[":
            self.advance()
            elements = self.sequence("]")
            return self.node(
                ast.ListExpr(token.pos, tuple(e for e, _ in elements)), *(d for _, d in elements)
            )
        if kind == "{":
            self.advance()
            entries: list[tuple[Parsed, Parsed]] = []
            while self.tok.kind != "}":
                key = self.expr()
                self.expect(":")
                value = self.expr()
                entries.append((key, value))
                if self.tok.kind != ",":
                    break
                self.advance()
            self.expect("}")
            depths = [d for pair in entries for _, d in pair]
            return self.node(
                ast.MapExpr(token.pos, tuple((k, v) for (k, _), (v, _) in entries)), *depths
            )
        if kind == "." and self.peek().kind == "ident":
            self.advance()  # a leading dot: the root scope, same names here
            return self.identifier_or_call()
        if kind == "ident":
            return self.identifier_or_call()
        raise self.unexpected()

    def sequence(self, close: str) -> list[Parsed]:
        items: list[Parsed] = []
        while self.tok.kind != close:
            items.append(self.expr())
            if self.tok.kind != ",":
                break
            self.advance()
        self.expect(close)
        return items

    def int_literal(self, pos: int, value: int) -> Parsed:
        if not INT64_MIN <= value <= INT64_MAX:
            raise self.error("int literal out of range", pos)
        return self.node(ast.Literal(pos, value))

    def identifier_or_call(self) -> Parsed:
        token = self.tok
        name = self.identifier()
        if self.tok.kind == "{":
            raise self.error("message construction is not supported")
        if self.tok.kind != "(":
            return self.node(ast.Ident(token.pos, name))
        args = self.arguments()
        if name == "has":
            if len(args) != 1:
                raise self.error("has() takes exactly one argument", token.pos)
            ((arg, depth),) = args
            if not isinstance(arg, ast.Select) or arg.test_only:
                raise self.error("the argument of has() must be a field selection", arg.pos)
            return ast.Select(arg.pos, arg.operand, arg.field, test_only=True), depth
        return self.call(token.pos, name, None, args)

    def member_call(self, receiver: Parsed, name_token: Token, args: list[Parsed]) -> Parsed:
        """`receiver.name(args)`: a comprehension macro, a namespaced function
        (`base64.encode(x)`), or a receiver-style call."""
        name = str(name_token.value)
        node, depth = receiver
        arities = _COMPREHENSIONS.get(name)
        if arities and len(args) in arities:
            var_node = args[0][0]
            if not isinstance(var_node, ast.Ident):
                raise self.error(f"the first argument of {name}() must be a name", var_node.pos)
            condition = args[1][0] if len(args) == 3 else None
            comprehension = ast.Comprehension(
                node.pos, name, var_node.name, node, args[-1][0], condition
            )
            return self.node(comprehension, depth, *(d for _, d in args[1:]))
        qualified = _qualified_name(node)
        if qualified is not None and is_qualified(f"{qualified}.{name}"):
            return self.call(node.pos, f"{qualified}.{name}", None, args)
        return self.call(name_token.pos, name, receiver, args)

    def call(self, pos: int, name: str, receiver: Parsed | None, args: list[Parsed]) -> Parsed:
        if receiver is None and name in VARIABLE_ALIASES:
            if args:
                raise self.error(f"{name}() takes no arguments", pos)
            fields = VARIABLE_ALIASES[name]
            variable: ast.Node = ast.Ident(pos, fields[0])
            for field in fields[1:]:
                variable = ast.Select(pos, variable, field)
            return self.node(variable, len(fields) - 1)
        if receiver is None and name in ALIASES:
            alias = name
            name, as_receiver = ALIASES[alias]
            if as_receiver:
                if not args:
                    raise self.error(
                        f"{alias}() needs the value it applies to as its first argument", pos
                    )
                receiver, args = args[0], args[1:]
        implicit = IMPLICIT_ARGUMENTS.get((name, len(args))) if receiver is None else None
        if implicit is not None:  # getReqHeader(n) reads req.headers: make it explicit
            path: ast.Node = ast.Ident(pos, implicit[0])
            for field in implicit[1:]:
                path = ast.Select(pos, path, field)
            args = [(path, len(implicit)), *args]
        children = ([receiver] if receiver is not None else []) + args
        call = ast.Call(pos, name, receiver[0] if receiver else None, tuple(a for a, _ in args))
        return self.node(call, *(d for _, d in children))


def _qualified_name(node: ast.Node) -> str | None:
    """``a.b.c`` for a chain of plain selections on an identifier, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Select) and not node.test_only:
        parts.append(node.field)
        node = node.operand
    if not isinstance(node, ast.Ident):
        return None
    parts.append(node.name)
    return ".".join(reversed(parts))
