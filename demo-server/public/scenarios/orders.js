// 3. Order notifications, on Server-Sent Events: a one-way stream the browser reconnects by itself,
// through most proxies. Staff in a back office see each status change as it happens; presence on
// the channel counts who is watching.
'use strict'
{
  demo.scenario({
    id: 'orders',
    title: 'Order notifications',
    classic: 'sse',
    lesson: 'One long-lived text/event-stream response; the server writes an event per status change. Presence on orders says how many pages watch it.',
    body: `
      <p class="watching"><strong class="viewers">–</strong> watching this channel</p>
      <div class="scroll-x"><table>
        <thead><tr><th>Order</th><th>Customer</th><th class="num">Amount</th><th>Status</th><th>Updated</th></tr></thead>
        <tbody class="orders"><tr class="empty"><td colspan="5">Waiting for the first status change…</td></tr></tbody>
      </table></div>`,
    start({ $, subscribe }) {
      const rows = new Map()
      const tbody = $('.orders')
      tbody.replaceChildren(html('tr', { className: 'empty' }, [html('td', { colSpan: 5 }, ['Waiting for the first status change…'])]))

      const show = (order, id) => {
        let row = rows.get(order.orderId)
        tbody.querySelector('.empty')?.remove()
        if (!row) {
          row = html('tr', {}, [0, 1, 2, 3, 4].map(() => html('td')))
          row.cells[2].className = 'num'
          rows.set(order.orderId, row)
        }
        row.dataset.id = id
        row.dataset.updated = order.at
        row.cells[0].textContent = `#${order.orderId}`
        row.cells[1].textContent = order.customer
        row.cells[2].textContent = `¥${Number(order.amount).toFixed(2)}`
        row.cells[3].replaceChildren(html('span', { className: 'status-tag' }, [order.status]))
        row.cells[3].firstChild.dataset.s = order.status
        row.cells[4].textContent = new Date(order.at).toLocaleTimeString([], { hour12: false })
        // Replaying the animation marks the row that just changed; the newest change goes on top.
        row.classList.remove('fresh')
        void row.offsetWidth
        row.classList.add('fresh')
        tbody.prepend(row)
        while (tbody.rows.length > 6) {
          const last = tbody.rows[tbody.rows.length - 1]
          for (const [orderId, other] of rows) if (other === last) rows.delete(orderId)
          last.remove()
        }
      }

      // rewind: 6 — the last six updates from history fill the table, then live ones follow.
      const orders = subscribe('orders', (message) => show(message.data, message.id), { rewind: 6 })
      orders.on('presence', () => ($('.viewers').textContent = String(orders.presence().length)))
    },
  })
}
