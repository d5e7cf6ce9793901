// confirmAction asks before an action that can't be undone (cancel a
// trip, reassign a driver): a modal <dialog> (focus kept inside, Escape
// declines) that resolves true only on the confirming button. Focus goes
// back to the element that opened it.
import { el } from './ui.js';

let open = null;

export function confirmAction({ title, body = '', ok = 'Confirm', keep = 'Keep' }) {
  if (open) open.close('keep');
  const back = document.activeElement;
  const dlg = el('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-body' },
    el('h2', { id: 'confirm-title', text: title }),
    el('p', { id: 'confirm-body', text: body }),
    el('form', { method: 'dialog', class: 'row' },
      el('button', { type: 'submit', value: 'keep', class: 'keep', text: keep }),
      el('button', { type: 'submit', value: 'ok', class: 'danger', text: ok })));
  document.body.append(dlg);
  open = dlg;
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      if (open === dlg) open = null;
      const yes = dlg.returnValue === 'ok';
      dlg.remove();
      if (back && typeof back.focus === 'function' && back.isConnected) back.focus();
      resolve(yes);
    }, { once: true });
    dlg.showModal();
    // The safe choice has the focus: Enter on a stray key press keeps.
    dlg.querySelector('button.keep').focus();
  });
}
