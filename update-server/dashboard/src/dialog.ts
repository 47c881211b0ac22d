/** Asks for the reason an operator halts or rolls back (the API requires one; it goes to the audit trail). */
export function askReason(title: string, hint: string): Promise<string | null> {
  const dialog = document.getElementById('reason-dialog') as HTMLDialogElement;
  const input = document.getElementById('reason-input') as HTMLTextAreaElement;
  (document.getElementById('reason-title') as HTMLElement).textContent = title;
  (document.getElementById('reason-hint') as HTMLElement).textContent = hint;
  input.value = '';
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => resolve(dialog.returnValue === 'confirm' && input.value.trim() ? input.value.trim() : null),
      { once: true },
    );
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  });
}
