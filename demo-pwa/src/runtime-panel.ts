import type { Runtime, RuntimeEvent, RuntimeStatus } from '@edgeship/runtime';

const byTestId = (id: string) => document.querySelector<HTMLElement>(`[data-testid="${id}"]`)!;

/** Renders what the runtime is doing: backend, releases, latency, update state, network. */
export class RuntimePanel {
  private updateText = 'up to date';

  constructor(private readonly runtime: Runtime) {}

  async refresh(): Promise<RuntimeStatus> {
    const status = await this.runtime.status();
    const models = status.models.filter((m) => m.active || m.loaded);
    byTestId('backend').textContent =
      models
        .map((m) => {
          const chosen = m.backend?.chosen;
          if (!chosen) return `${m.name}: not loaded`;
          const threads = chosen.threads ? ` ×${chosen.threads}` : '';
          const fallback = m.backend?.fallbacks.length
            ? ` (fallback: ${m.backend.fallbacks.map((f) => f.reason).join(', ')})`
            : '';
          return `${m.name}: ${chosen.backend}${threads}${fallback}`;
        })
        .join(' · ') || '—';
    byTestId('active-release').textContent = models.map((m) => m.loaded ?? m.active).join(', ') || '—';
    byTestId('cached-releases').textContent = status.models.flatMap((m) => m.cached).join(', ') || '—';
    byTestId('latency').textContent =
      Object.entries(status.latency)
        .map(([name, l]) => `${name}: ${fmt(l.p50)} / ${fmt(l.p95)} ms (${l.count})`)
        .join(' · ') || '—';
    const pending = status.models.filter((m) => m.pending);
    if (pending.length > 0) {
      this.updateText = `update downloaded (${pending.map((m) => m.pending).join(', ')}), applies on reload`;
    }
    byTestId('update-status').textContent = this.updateText;
    const check = status.lastCheck;
    byTestId('last-check').textContent = check
      ? `${new Date(check.at).toLocaleTimeString()} ${check.ok ? (check.changed ? 'new manifest' : 'no change') : `failed: ${check.error?.code}`}`
      : '—';
    return status;
  }

  /** Update events change the headline before the next refresh picks up the details. */
  onEvent(event: RuntimeEvent): void {
    if (event.type === 'update-available') this.updateText = `downloading ${event.release}…`;
    if (event.type === 'update-failed') this.updateText = `update ${event.release} failed: ${event.code}`;
    if (event.type === 'update-activated') this.updateText = `running ${event.release}`;
    if (event.type === 'rolled-back') this.updateText = `rolled back from ${event.from} (${event.code})`;
    void this.refresh();
  }

  showError(error: unknown): void {
    const box = document.getElementById('runtime-error')!;
    const code = (error as { code?: string }).code;
    box.textContent = `${code ? `${code}: ` : ''}${(error as Error).message}`;
    box.hidden = false;
  }
}

function fmt(ms: number | null): string {
  return ms === null ? '—' : ms.toFixed(ms < 10 ? 2 : 1);
}

export function watchNetwork(): void {
  const pill = byTestId('network');
  const render = () => {
    pill.textContent = navigator.onLine ? 'online' : 'offline';
    pill.classList.toggle('offline', !navigator.onLine);
  };
  addEventListener('online', render);
  addEventListener('offline', render);
  render();
}
