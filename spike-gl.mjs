import puppeteer from 'puppeteer-core';
const browser = await puppeteer.launch({ browser: 'firefox', executablePath: '/usr/bin/firefox-esr', protocol: 'webDriverBiDi', headless: true, dumpio: !!process.env.DUMP, extraPrefsFirefox: JSON.parse(process.argv[2] ?? '{}') });
const page = await browser.newPage();
await page.goto('about:blank');
console.log(await page.evaluate(() => {
  const c = document.createElement('canvas');
  let msg = '';
  c.addEventListener('webglcontextcreationerror', (e) => { msg += e.statusMessage; });
  const gl = c.getContext('webgl2') ?? c.getContext('webgl');
  if (!gl) return 'no webgl: ' + msg;
  const ext = gl.getExtension('WEBGL_debug_renderer_info');
  return [gl.getParameter(gl.VERSION), ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER), !!gl.getExtension('EXT_color_buffer_float')];
}));
await browser.close();
