// AgentCom service worker: shows the hub's push notifications and brings
// the dashboard forward when one is clicked. Served at /sw.js with
// "Service-Worker-Allowed: /" so its scope is the whole hub.
'use strict';

self.addEventListener('install', (event) => {
  event.waitUntil(self.skipWaiting());
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('push', (event) => {
  let data = { title: 'AgentCom', body: 'New notification' };
  if (event.data) {
    try {
      data = Object.assign(data, event.data.json());
    } catch (e) {
      data.body = event.data.text();
    }
  }
  const options = {
    body: data.body,
    icon: data.icon || '/favicon.ico',
    tag: 'agentcom-alert',
    renotify: true,
    data: { url: '/dashboard' },
  };
  if (data.badge) options.badge = data.badge;
  event.waitUntil(self.registration.showNotification(data.title, options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = (event.notification.data && event.notification.data.url) || '/dashboard';
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const w of windows) {
      if (w.url.includes('/dashboard') && 'focus' in w) {
        return w.focus();
      }
    }
    if (self.clients.openWindow) {
      return self.clients.openWindow(target);
    }
    return undefined;
  })());
});
