// Live stock on the product page: listen to the store's inventory stream and update the
// figures marked with data-sku. Without JavaScript the page still shows the stock at load time.
(function () {
  "use strict";
  var cells = document.querySelectorAll("[data-stock-sku]");
  if (!cells.length || !window.EventSource) return;
  var source = new EventSource("/api/v1/inventory/events");
  source.addEventListener("stock", function (e) {
    var change;
    try { change = JSON.parse(e.data); } catch (_) { return; }
    cells.forEach(function (cell) {
      if (cell.getAttribute("data-stock-sku") !== change.sku) return;
      var n = Number(change.available);
      cell.textContent = n > 0 ? n + " in stock" : "Out of stock";
    });
  });
})();
