// The simulator reports page: a report from the demo's --reports folder, or a file the
// user picks, shown in a sandboxed frame (its scripts run, but with no access to this page
// or the admin API).
const list = document.getElementById('report-list') as HTMLSelectElement;
const file = document.getElementById('report-file') as HTMLInputElement;
const frame = document.getElementById('report') as HTMLIFrameElement;
const note = document.getElementById('report-note') as HTMLElement;
let blobUrl: string | undefined;

async function load(): Promise<void> {
  const res = await fetch('/api/demo/reports');
  const { dir, reports } = (await res.json()) as { dir: string | null; reports: string[] };
  for (const r of reports) list.append(Object.assign(document.createElement('option'), { value: r, textContent: r }));
  note.textContent =
    dir === null
      ? 'No reports folder: start the demo with --reports DIR to list reports here, or open a file.'
      : `${reports.length} report${reports.length === 1 ? '' : 's'} in ${dir}.`;
  const wanted = new URLSearchParams(location.search).get('report');
  if (wanted && reports.includes(wanted)) {
    list.value = wanted;
    show(`/api/demo/reports/${encodeURIComponent(wanted)}`);
  }
}

function show(src: string): void {
  if (blobUrl && src !== blobUrl) URL.revokeObjectURL(blobUrl);
  frame.src = src;
}

list.addEventListener('change', () => {
  if (list.value) show(`/api/demo/reports/${encodeURIComponent(list.value)}`);
});
file.addEventListener('change', () => {
  const f = file.files?.[0];
  if (!f) return;
  blobUrl = URL.createObjectURL(new Blob([f], { type: 'text/html' }));
  show(blobUrl);
  note.textContent = `Showing ${f.name} (from this computer).`;
});
void load().catch((e: unknown) => (note.textContent = `Cannot list reports: ${(e as Error).message}`));
