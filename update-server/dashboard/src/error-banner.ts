import { EdgeshipError } from '@edgeship/protocol/errors';

/** Shows an admin API failure as its typed code and message; anything else as E_UNEXPECTED. */
export function showError(error: unknown, context?: string): void {
  const banner = document.getElementById('error') as HTMLElement;
  const code = error instanceof EdgeshipError ? error.code : 'E_UNEXPECTED';
  const message = error instanceof Error ? error.message : String(error);
  banner.dataset.code = code;
  const codeEl = document.createElement('strong');
  codeEl.dataset.testid = 'error-code';
  codeEl.textContent = code;
  const text = document.createElement('span');
  text.dataset.testid = 'error-message';
  text.textContent = `${context ? `${context}: ` : ''}${message}`;
  const close = document.createElement('button');
  close.textContent = 'Dismiss';
  close.addEventListener('click', clearError);
  banner.replaceChildren(codeEl, ' ', text, ' ', close);
  banner.hidden = false;
}

export function clearError(): void {
  const banner = document.getElementById('error') as HTMLElement;
  banner.hidden = true;
  delete banner.dataset.code;
  banner.replaceChildren();
}
