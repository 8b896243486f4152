/**
 * The demo page: opens WebGPU (or explains how to turn it on), shows the
 * adapter, and starts each tab the first time it is shown. Tabs follow the
 * URL hash (#digits, #ood, #regression, #calibration), so a tab can be linked,
 * and the query string can preset the selects (presetControls).
 */
import { BayesError, createContext } from '../src/index.js';
import { initCalibration } from './calibration.js';
import { initDigits } from './digits.js';
import { DemoEnv, byId } from './env.js';
import { initOod } from './ood.js';
import { initRegression } from './regression.js';

const TABS = ['digits', 'ood', 'regression', 'calibration'] as const;
type Tab = (typeof TABS)[number];

/** What a tab does when it is first shown; OOD, regression and calibration start their run at once. */
const STARTERS: Record<Tab, (env: DemoEnv) => void> = {
  digits: (env) => initDigits(env),
  ood: (env) => initOod(env).run(),
  regression: (env) => initRegression(env).run(),
  calibration: (env) => initCalibration(env).run(),
};

function showNoWebGpu(reason: string): void {
  byId('no-webgpu-reason').textContent = reason;
  byId('no-webgpu').hidden = false;
  const adapter = byId('adapter');
  adapter.dataset.state = 'failed';
  adapter.textContent = 'WebGPU: not available';
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('button'))) b.disabled = true;
  for (const t of TABS) byId(`tab-${t}`).hidden = true;
  document.documentElement.dataset.demo = 'no-webgpu';
}

/** Selects can be preset from the query string by id, e.g. index.html?cal-count=200&ood-samples=10#calibration. */
function presetControls(): void {
  new URLSearchParams(location.search).forEach((value, id) => {
    const el = document.getElementById(id);
    if (el instanceof HTMLSelectElement && Array.from(el.options).some((o) => o.value === value)) el.value = value;
  });
}

async function start(): Promise<void> {
  presetControls();
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) {
    showNoWebGpu('navigator.gpu is undefined: this browser does not offer WebGPU here (it is off, unsupported, or the page is not a secure context).');
    return;
  }
  let env: DemoEnv;
  try {
    env = new DemoEnv(await createContext());
  } catch (e) {
    showNoWebGpu(e instanceof BayesError ? e.message : `Opening a WebGPU device failed: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  env.ctx.device.addEventListener('uncapturederror', (ev) => console.error(`WebGPU error: ${(ev as GPUUncapturedErrorEvent).error.message}`));
  const adapter = byId('adapter');
  adapter.dataset.state = 'ready';
  adapter.dataset.fallback = String(env.ctx.adapter.isFallbackAdapter);
  adapter.textContent = `WebGPU adapter: ${env.ctx.adapterName}`;
  if (env.ctx.adapter.isFallbackAdapter) {
    const note = document.createElement('div');
    note.className = 'fallback';
    note.textContent = 'a software (fallback) adapter: everything works, training is slow';
    adapter.append(note);
  }

  const started = new Set<Tab>();
  const show = (tab: Tab) => {
    for (const t of TABS) {
      byId(`tab-${t}`).hidden = t !== tab;
      byId(`tabbtn-${t}`).setAttribute('aria-selected', String(t === tab));
    }
    if (!started.has(tab)) {
      started.add(tab);
      STARTERS[tab](env);
    }
  };
  const fromHash = (): Tab => {
    const h = location.hash.slice(1);
    return (TABS as readonly string[]).includes(h) ? (h as Tab) : 'digits';
  };
  for (const t of TABS) byId(`tabbtn-${t}`).addEventListener('click', () => (location.hash = t));
  addEventListener('hashchange', () => show(fromHash()));
  show(fromHash());
  document.documentElement.dataset.demo = 'ready';
}

start().catch((e) => {
  console.error('demo: start failed:', e);
  showNoWebGpu(`The demo failed to start: ${e instanceof Error ? e.message : String(e)}`);
});
