/**
 * A small strict XML reader for the charts' SVG strings: elements, attributes
 * and text, with entities decoded. It throws on anything a browser's XML
 * parser would reject (a stray '<' or '&', an unknown entity, a tag closed out
 * of order, an attribute twice), so a label that was not escaped fails here.
 */

export interface Element {
  name: string;
  attributes: Record<string, string>;
  children: Element[];
  /** The decoded text directly inside this element. */
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string, where: string): string {
  return raw.replace(/&([^;\s&<]*);?/g, (all, name: string) => {
    if (!all.endsWith(';')) throw new Error(`svg: a bare '&' in ${where}: ${JSON.stringify(raw)}`);
    if (name in ENTITIES) return ENTITIES[name];
    const code = /^#(\d+)$/.exec(name)?.[1] ?? (/^#x([0-9a-f]+)$/i.exec(name) ? String(parseInt(name.slice(2), 16)) : null);
    if (code === null) throw new Error(`svg: unknown entity &${name}; in ${where}`);
    return String.fromCodePoint(Number(code));
  });
}

export function parseSvg(source: string): Element {
  const root: Element = { name: '#document', attributes: {}, children: [], text: '' };
  const stack: Element[] = [root];
  const token = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*="[^"]*")*)\s*(\/?)>|([^<]+)/y;
  let at = 0;
  while (at < source.length) {
    token.lastIndex = at;
    const m = token.exec(source);
    if (!m) throw new Error(`svg: cannot read at ${at}: ${JSON.stringify(source.slice(at, at + 60))}`);
    at = token.lastIndex;
    const [, closing, name, attributeText, selfClosing, text] = m;
    const top = stack[stack.length - 1];
    if (text !== undefined) {
      if (text.includes('>')) throw new Error(`svg: a raw '>' in text ${JSON.stringify(text)}`);
      top.text += decode(text, `the text of <${top.name}>`);
      continue;
    }
    if (closing) {
      if (top.name !== name) throw new Error(`svg: </${name}> closes <${top.name}>`);
      stack.pop();
      continue;
    }
    const attributes: Record<string, string> = {};
    for (const a of attributeText.matchAll(/([A-Za-z_:][\w:.-]*)="([^"]*)"/g)) {
      if (a[1] in attributes) throw new Error(`svg: attribute ${a[1]} twice on <${name}>`);
      if (a[2].includes('<')) throw new Error(`svg: a raw '<' in attribute ${a[1]} of <${name}>`);
      attributes[a[1]] = decode(a[2], `attribute ${a[1]} of <${name}>`);
    }
    const element: Element = { name, attributes, children: [], text: '' };
    top.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  if (stack.length !== 1) throw new Error(`svg: <${stack[stack.length - 1].name}> is not closed`);
  if (root.children.length !== 1 || root.children[0].name !== 'svg') throw new Error('svg: expected one <svg> root element');
  return root.children[0];
}

/** Every element under `root` (depth first, document order), root included. */
export function elements(root: Element): Element[] {
  return [root, ...root.children.flatMap(elements)];
}

/** Elements named `name` whose class list has every class in `classes` (space separated). */
export function select(root: Element, name: string, classes = ''): Element[] {
  const want = classes.split(/\s+/).filter(Boolean);
  return elements(root).filter((e) => e.name === name && want.every((c) => (e.attributes.class ?? '').split(/\s+/).includes(c)));
}

/** A numeric attribute (throws when it is missing). */
export function attr(e: Element, name: string): number {
  const v = e.attributes[name];
  if (v === undefined) throw new Error(`<${e.name}> has no attribute ${name}`);
  return Number(v);
}

/** "x1,y1 x2,y2 ..." as pairs. */
export function points(e: Element): [number, number][] {
  return e.attributes.points.trim().split(/\s+/).map((p) => p.split(',').map(Number) as [number, number]);
}

/** All text content under `e`, decoded. */
export function textOf(e: Element): string {
  return e.text + e.children.map(textOf).join('');
}
