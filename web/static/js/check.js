// The connection check page (/check): runs every check of checks.js in
// turn and shows each result in plain words. Automation contract:
// window.confabCheck.done resolves to the results ({id, state, text});
// each <li> of #checks has data-check (the id) and data-state.
import * as checks from './checks.js';

const $ = (id) => document.getElementById(id);

// show adds or updates one check's line.
function show(id, title, r) {
  let li = document.querySelector(`#checks li[data-check="${id}"]`);
  if (!li) {
    li = document.createElement('li');
    li.dataset.check = id;
    li.innerHTML = '<span class="check-title"></span><span class="check-text"></span>';
    li.querySelector('.check-title').textContent = title;
    $('checks').append(li);
  }
  li.dataset.state = r.state;
  li.querySelector('.check-text').textContent = r.text;
}

async function run() {
  $('checks').replaceChildren();
  $('check-again').disabled = true;
  $('check-summary').dataset.state = 'running';
  $('check-summary').textContent = 'Checking…';
  const results = [];
  const step = async (id, title, f) => {
    show(id, title, { state: 'running', text: 'Checking…' });
    let r;
    try {
      r = await f();
    } catch (e) {
      r = { state: 'fail', text: `The check itself failed: ${e.message || e}` };
    }
    show(id, title, r);
    results.push({ id, ...r });
    return r;
  };
  const ws = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  await step('websocket', 'Server reachable', () => checks.websocket(ws));
  let cfg = { iceServers: [], tcp: false };
  try {
    cfg = await checks.config();
  } catch (e) {
    console.warn('check config', String(e));
  }
  const turn = checks.turnGroups(cfg.iceServers);
  await step('udp', 'Media over UDP', () => checks.udp());
  await step('tcp', 'Media over TCP', () => checks.tcp(cfg));
  await step('turn-udp', 'TURN relay over UDP', () => checks.turn(turn.udp, 'UDP'));
  await step('turn-tcp', 'TURN relay over TCP/TLS', () => checks.turn(turn.tcp, 'TCP/TLS'));
  await step('camera', 'Camera', () => checks.device('video'));
  await step('microphone', 'Microphone', () => checks.device('audio'));
  summarize(results);
  $('check-again').disabled = false;
  return results;
}

// summarize says in one line whether meetings will work.
function summarize(results) {
  const ok = (id) => results.some((r) => r.id === id && r.state === 'ok');
  const media = ok('udp') || ok('tcp') || ok('turn-udp') || ok('turn-tcp');
  const failed = results.filter((r) => r.state === 'fail').length;
  let text = 'Everything works: you are ready for meetings.';
  if (!ok('websocket')) text = 'This browser cannot reach the server: meetings will not work from this network.';
  else if (!media) text = 'No path for media gets through: you could join, but neither see nor hear anyone. Try another network.';
  else if (failed) text = 'Meetings will work, but not everything above does: see what to do for each.';
  $('check-summary').dataset.state = failed ? 'fail' : 'ok';
  $('check-summary').textContent = text;
}

let done = run();
$('check-again').addEventListener('click', () => {
  done = run();
  window.confabCheck.done = done;
});
window.confabCheck = { done };
