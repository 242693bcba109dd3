// Code search page: the codebase index through `searchCode`, in any of its modes (words, phrase, substring,
// regex, semantic, hybrid). The query and mode are kept in the URL, so a search can be shared.

import { h, replace } from '../dom.js';
import { describeError, note } from '../ui.js';

const SEARCH = `query($q: String!, $mode: CodeSearchMode!) {
  searchCode(query: $q, mode: $mode, limit: 50) { file line symbol kind score snippet }
}`;
const MODES = [
  ['LEXICAL', 'Words'], ['PHRASE', 'Phrase'], ['SUBSTRING', 'Substring'], ['REGEX', 'Regex'],
  ['SEMANTIC', 'Meaning (semantic)'], ['HYBRID', 'Words + meaning (hybrid)'],
];

export function render(ctx) {
  const { client, main, params } = ctx;
  const query = h('input', { type: 'search', id: 'code-query', name: 'q', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'send_email, "connection pool", or a description', value: params.get('q') || '' });
  const mode = h('select', { id: 'code-mode', name: 'mode' },
    MODES.map(([value, label]) => h('option', { value }, label)));
  mode.value = MODES.some(([value]) => value === params.get('mode')) ? params.get('mode') : 'LEXICAL';
  const results = h('div', { class: 'table-wrap panel', id: 'code-results' });
  const form = h('form', { class: 'search', role: 'search', 'aria-label': 'Search the code index' },
    h('div', { class: 'field grow' }, h('label', { for: 'code-query' }, 'Search the code'), query),
    h('div', { class: 'field' }, h('label', { for: 'code-mode' }, 'Mode'), mode),
    h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'button primary' }, 'Search')));
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Code search')), form, results);
  let current = 0;

  async function search() {
    const text = query.value.trim();
    ctx.setParams({ q: text, mode: mode.value === 'LEXICAL' ? '' : mode.value });
    if (!text) return replace(results, note('Type a name, words, or a description.'));
    const ticket = ++current;
    replace(results, note('Searching…'));
    try {
      const { searchCode } = await client.request(SEARCH, { q: text, mode: mode.value });
      if (ticket === current) replace(results, table(searchCode));
    } catch (error) {
      if (ticket === current) replace(results, note(describeError(error), 'error'));
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    search();
  });
  mode.addEventListener('change', () => query.value.trim() && search());
  if (query.value) search();
  else replace(results, note('Type a name, words, or a description.'));
}

function table(hits) {
  if (!hits.length) return note('No matches.');
  return h('table', { class: 'table code-hits' },
    h('caption', { class: 'visually-hidden' }, 'Code search hits, best first'),
    h('thead', {}, h('tr', {}, ['Where', 'Symbol', 'Text', 'Score']
      .map((label, i) => h('th', { scope: 'col', class: i === 3 ? 'num' : null }, label)))),
    h('tbody', {}, hits.map((hit) => h('tr', {},
      h('th', { scope: 'row' }, `${hit.file}:${hit.line}`), h('td', {}, hit.symbol || ''),
      h('td', {}, h('code', {}, hit.snippet)), h('td', { class: 'num' }, hit.score.toFixed(3))))));
}
