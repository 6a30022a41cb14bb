// 6. Counter, on the hidden-iframe stream: the oldest streaming trick, a never-ending HTML document
// of <script> blocks. pushline still speaks it for browser stacks that have neither WebSocket nor
// EventSource; here it feeds a number that goes up every second, and the frames are shown as they
// come out of the iframe.
'use strict'
{
  demo.scenario({
    id: 'counter',
    title: 'Live counter',
    classic: 'iframe',
    lesson: 'A hidden iframe loads /push/iframe, a document the server never finishes; each frame is a script that posts it to this page.',
    body: `
      <p class="counter"><strong class="count">–</strong><span class="label"> counter</span></p>
      <ol class="frames lines" data-empty="No frame yet."></ol>`,
    start({ $, subscribe, inspector }) {
      $('.frames').replaceChildren()
      subscribe('counter', (message) => ($('.count').textContent = String(message.data.count)))
      return inspector.onFrame((frame) => {
        const line = html('li', {}, [html('time', {}, [new Date().toLocaleTimeString([], { hour12: false })]), JSON.stringify(frame)])
        $('.frames').prepend(line)
        while ($('.frames').children.length > 8) $('.frames').lastElementChild.remove()
      })
    },
  })
}
