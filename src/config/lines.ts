// Where each key of a TOML document was written, so validation errors can say "config.toml:12".
// smol-toml returns values without positions, so this re-scans the text: it follows
// [table] and [[array]] headers and dotted keys, and skips over values (strings, multi-line
// strings, arrays, inline tables) without interpreting them. It only ever runs on text smol-toml
// already accepted, so it can be lenient: anything it cannot follow just has no line.

/** A key's location in the parsed document: table keys and array indexes. */
export type KeyPath = readonly (string | number)[];

const BARE_KEY_CHAR_RE = /[A-Za-z0-9_-]/;

/**
 * One key segment's node: a tree rather than a map of whole paths, so a dotted key of n parts
 * costs n nodes, not n paths of up to n segments each (a hostile config could be quadratic).
 */
class KeyNode {
  line: number | undefined = undefined;
  /** For a [[header]] array: how many elements it has so far. */
  arrayLength: number | undefined = undefined;
  readonly children = new Map<string | number, KeyNode>();

  child(segment: string | number): KeyNode {
    let node = this.children.get(segment);
    if (!node) this.children.set(segment, (node = new KeyNode()));
    return node;
  }
}

export class KeyLines {
  private readonly root = new KeyNode();

  static scan(text: string): KeyLines {
    const result = new KeyLines();
    new Scanner(text, result.root).run();
    return result;
  }

  /** Line of the key, else of the nearest enclosing key or table header that has one. */
  lineOf(path: KeyPath): number | undefined {
    let node: KeyNode | undefined = this.root;
    let found: number | undefined;
    for (const segment of path) {
      node = node.children.get(segment);
      if (!node) break;
      if (node.line !== undefined) found = node.line;
    }
    return found;
  }
}

class Scanner {
  private i = 0;
  private line = 1;
  /** The node of the current [table] (or [[array]] element). */
  private table: KeyNode;

  constructor(
    private readonly text: string,
    private readonly root: KeyNode,
  ) {
    this.table = root;
  }

  run(): void {
    const { text } = this;
    while (this.i < text.length) {
      const c = text[this.i]!;
      if (c === ' ' || c === '\t' || c === '\r') this.i++;
      else if (c === '\n') this.newline();
      else if (c === '#') this.skipComment();
      else if (c === '[') this.header();
      else this.keyValue();
    }
  }

  private newline(): void {
    this.line++;
    this.i++;
  }

  private skipComment(): void {
    while (this.i < this.text.length && this.text[this.i] !== '\n') this.i++;
  }

  private skipToNextLine(): void {
    this.skipComment();
    if (this.i < this.text.length) this.newline();
  }

  private header(): void {
    const isArray = this.text[this.i + 1] === '[';
    this.i += isArray ? 2 : 1;
    const keys = this.key();
    if (keys) {
      let node = this.root;
      keys.forEach((key, n) => {
        node = node.child(key);
        const length = node.arrayLength;
        if (isArray && n === keys.length - 1) {
          node.arrayLength = (length ?? 0) + 1;
          node = node.child(length ?? 0);
        } else if (length !== undefined) {
          // [peers.extra] after [[peers]] belongs to the latest peers element.
          node = node.child(length - 1);
        }
      });
      this.table = node;
      node.line = this.line;
    }
    this.skipToNextLine();
  }

  private keyValue(): void {
    const keys = this.key();
    if (!keys || this.text[this.i] !== '=') {
      this.skipToNextLine();
      return;
    }
    this.i++;
    let node = this.table;
    for (const key of keys) {
      node = node.child(key);
      node.line ??= this.line;
    }
    this.skipValue();
  }

  /** Reads a possibly dotted, possibly quoted key; leaves `i` after trailing blanks. */
  private key(): string[] | null {
    const keys: string[] = [];
    for (;;) {
      this.skipBlanks();
      const c = this.text[this.i];
      if (c === '"' || c === "'") {
        const start = this.i;
        this.skipQuoted(c);
        const raw = this.text.slice(start, this.i);
        keys.push(c === "'" ? raw.slice(1, -1) : decodeBasicString(raw));
      } else {
        const start = this.i;
        while (this.i < this.text.length && BARE_KEY_CHAR_RE.test(this.text[this.i]!)) this.i++;
        if (this.i === start) return null;
        keys.push(this.text.slice(start, this.i));
      }
      this.skipBlanks();
      if (this.text[this.i] !== '.') return keys;
      this.i++;
    }
  }

  private skipBlanks(): void {
    while (this.text[this.i] === ' ' || this.text[this.i] === '\t') this.i++;
  }

  /** Skips one single-line string starting at `i` (on its opening quote). */
  private skipQuoted(quote: string): void {
    this.i++;
    while (this.i < this.text.length && this.text[this.i] !== quote && this.text[this.i] !== '\n') {
      if (quote === '"' && this.text[this.i] === '\\') this.i++;
      this.i++;
    }
    this.i++;
  }

  private skipMultiline(delimiter: string): void {
    this.i += 3;
    while (this.i < this.text.length && !this.text.startsWith(delimiter, this.i)) {
      if (this.text[this.i] === '\n') this.line++;
      if (delimiter === '"""' && this.text[this.i] === '\\') this.i++;
      this.i++;
    }
    this.i += 3;
    // Up to two quotes may directly precede the closing delimiter ("""a""""  is  a").
    for (let extra = 0; extra < 2 && this.text[this.i] === delimiter[0]; extra++) this.i++;
  }

  /** Skips a value up to the end of its (last) line, across multi-line arrays and strings. */
  private skipValue(): void {
    const { text } = this;
    let depth = 0;
    while (this.i < text.length) {
      const c = text[this.i]!;
      if (text.startsWith('"""', this.i) || text.startsWith("'''", this.i)) this.skipMultiline(text.slice(this.i, this.i + 3));
      else if (c === '"' || c === "'") this.skipQuoted(c);
      else if (c === '#') this.skipComment();
      else if (c === '\n') {
        this.newline();
        if (depth === 0) return;
      } else {
        if (c === '[' || c === '{') depth++;
        else if (c === ']' || c === '}') depth--;
        this.i++;
      }
    }
  }
}

function decodeBasicString(quoted: string): string {
  try {
    // TOML basic-string escapes are a superset of JSON's that keys never need in practice.
    return JSON.parse(quoted) as string;
  } catch {
    return quoted.slice(1, -1);
  }
}
