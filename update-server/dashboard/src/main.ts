import './style.css';
import {
  AdminApiError,
  AdminClient,
  type ChannelState,
  type ReleaseSummary,
} from '../../src/admin-client.ts';
import { clear, h } from './dom.ts';
import { clearError, showError } from './error-banner.ts';
import { forgetToken, readToken, saveToken, takeTokenFromUrl } from './token.ts';
import type { ViewContext } from './views/context.ts';
import { fleetView } from './views/fleet.ts';
import { historyView } from './views/history.ts';
import { modelsView } from './views/models.ts';
import { releaseDetailView, releasesView } from './views/releases.ts';
import { rolloutsView } from './views/rollouts.ts';
import { verdictsView } from './views/verdicts.ts';

const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('channels') as HTMLElement;
const session = document.getElementById('session') as HTMLElement;

/** What the operator is looking at; the channel is in the URL hash (#/app/channel) so it survives reloads. */
const view = {
  release: null as string | null,
  historyRollout: null as string | null,
  fleetModel: null as string | null,
};

function selectedChannel(): { app: string; channel: string } | null {
  const [app, channel] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  return app && channel ? { app, channel } : null;
}

function signInForm(): void {
  session.replaceChildren();
  nav.replaceChildren();
  const input = h('input', {
    type: 'password',
    autocomplete: 'off',
    placeholder: 'es_ope_…',
    'data-testid': 'token-input',
    'aria-label': 'bearer token',
    required: true,
  });
  const form = h(
    'form',
    { class: 'card sign-in', 'data-testid': 'sign-in' },
    h('h2', {}, 'Sign in'),
    h(
      'p',
      {},
      'Paste an operator token (a viewer token can look but not act). It is kept for this tab only.',
    ),
    input,
    h('button', { type: 'submit' }, 'Use token'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    saveToken(sessionStorage, input.value);
    void start();
  });
  clear(main, form);
}

async function start(): Promise<void> {
  clearError();
  const token = readToken(sessionStorage);
  if (!token) return signInForm();
  const api = new AdminClient(location.origin, token);
  let me: { name: string; role: string };
  try {
    me = await api.whoami();
  } catch (error) {
    if (error instanceof AdminApiError && error.status === 401) forgetToken(sessionStorage);
    showError(error, 'sign in');
    return signInForm();
  }
  const live = h('input', { type: 'checkbox', 'data-testid': 'live' });
  session.replaceChildren(
    h('span', { 'data-testid': 'whoami', 'data-role': me.role }, `${me.name} (${me.role})`),
    h('label', { class: 'live' }, live, ' refresh every 10 s'),
    h('button', { onclick: () => void renderChannel(ctx) }, 'Refresh'),
    h(
      'button',
      {
        onclick: () => {
          forgetToken(sessionStorage);
          signInForm();
        },
      },
      'Sign out',
    ),
  );
  const ctx: ViewContext = {
    api,
    canOperate: me.role === 'operator',
    async act(label, call) {
      clearError();
      try {
        await call();
      } catch (error) {
        showError(error, label);
      }
      await renderChannel(ctx, { keepError: true });
    },
  };
  let timer: ReturnType<typeof setInterval> | undefined;
  live.addEventListener('change', () => {
    clearInterval(timer);
    // Not while a dialog is open: a re-render would take the button the operator is about to press.
    if (live.checked)
      timer = setInterval(() => document.querySelector('dialog[open]') || renderChannel(ctx), 10_000);
  });
  window.onhashchange = () => {
    view.release = null;
    view.historyRollout = null;
    view.fleetModel = null;
    void renderChannel(ctx);
  };
  await renderChannel(ctx);
}

async function renderNav(api: AdminClient): Promise<Array<{ app: string; channel: string }>> {
  const { channels } = await api.channels();
  const current = selectedChannel();
  clear(
    nav,
    h('h2', {}, 'Channels'),
    channels.length === 0 ? h('p', { class: 'empty' }, 'No channel has a manifest yet.') : null,
    h(
      'ul',
      {},
      ...channels.map((c) =>
        h(
          'li',
          {},
          h(
            'a',
            {
              href: `#/${encodeURIComponent(c.app)}/${encodeURIComponent(c.channel)}`,
              'data-testid': 'channel-link',
              class: current?.app === c.app && current.channel === c.channel ? 'selected' : '',
            },
            `${c.app} / ${c.channel}`,
          ),
        ),
      ),
    ),
  );
  return channels;
}

let rendering = 0;

async function renderChannel(ctx: ViewContext, opts: { keepError?: boolean } = {}): Promise<void> {
  const ticket = ++rendering;
  if (!opts.keepError) clearError();
  main.dataset.loaded = 'false';
  try {
    const channels = await renderNav(ctx.api);
    let selected = selectedChannel();
    if (!selected && channels[0]) {
      // history.replaceState does not fire hashchange, so this does not render twice.
      history.replaceState(history.state, '', `#/${channels[0].app}/${channels[0].channel}`);
      selected = channels[0];
      await renderNav(ctx.api);
    }
    if (!selected) {
      clear(
        main,
        h(
          'section',
          { class: 'card' },
          h('p', { class: 'empty' }, 'Publish a release and start a rollout to see it here.'),
        ),
      );
      main.dataset.loaded = 'true';
      return;
    }
    const { app, channel } = selected;
    const [state, { rollouts }, { entries }, { releases }] = await Promise.all([
      ctx.api.channel(app, channel),
      ctx.api.listRollouts({ app, channel }),
      ctx.api.audit({ app, channel, limit: 200 }),
      ctx.api.listReleases(),
    ]);
    if (ticket !== rendering) return;
    const models = new Set([...state.models.map((m) => m.model), ...rollouts.map((r) => r.model)]);
    const channelReleases = releases.filter((r) => models.has(r.model));
    const rerender = () => void renderChannel(ctx);
    const fleetModel =
      view.fleetModel && models.has(view.fleetModel) ? view.fleetModel : ([...models][0] ?? null);

    const detail = h('div', { 'data-testid': 'release-detail-slot' });
    clear(
      main,
      h('h2', { class: 'channel-title', 'data-testid': 'channel-title' }, `${app} / ${channel}`),
      modelsView(ctx, state, channelReleases),
      rolloutsView(ctx, rollouts, (r) => {
        view.historyRollout = r.id;
        rerender();
      }),
      verdictsView(entries),
      fleetModel
        ? fleetView(
            ctx,
            {
              app,
              channel,
              models: [...models],
              model: fleetModel,
              releases: releasesOf(state, channelReleases, fleetModel),
            },
            (m) => {
              view.fleetModel = m;
              rerender();
            },
          )
        : null,
      releasesView(channelReleases, view.release, (r) => {
        view.release = `${r.model}@${r.version}`;
        void showRelease(ctx, r, detail);
      }),
      detail,
      historyView(entries, view.historyRollout, () => {
        view.historyRollout = null;
        rerender();
      }),
    );
    const open = channelReleases.find((r) => `${r.model}@${r.version}` === view.release);
    if (open) await showRelease(ctx, open, detail);
    main.dataset.loaded = 'true';
  } catch (error) {
    if (ticket !== rendering) return;
    showError(error, 'load');
    main.dataset.loaded = 'true';
  }
}

/** The releases worth charting for a model: production, the running rollout's, then the newest. */
function releasesOf(state: ChannelState, releases: ReleaseSummary[], model: string): string[] {
  const m = state.models.find((x) => x.model === model);
  const first = [m?.rollout?.release, m?.production].filter((v): v is string => Boolean(v));
  const rest = releases.filter((r) => r.model === model).map((r) => r.version);
  return [...new Set([...first, ...rest])];
}

async function showRelease(ctx: ViewContext, release: ReleaseSummary, slot: HTMLElement): Promise<void> {
  try {
    slot.replaceChildren(releaseDetailView(await ctx.api.getRelease(release.model, release.version)));
    for (const row of document.querySelectorAll('[data-testid="release-row"]')) {
      row.classList.toggle(
        'selected',
        row.getAttribute('data-release') === `${release.model}@${release.version}`,
      );
    }
  } catch (error) {
    showError(error, `release ${release.model}@${release.version}`);
  }
}

takeTokenFromUrl(location, history, sessionStorage);
void start();
